"""Users of the local development stack, with generated passwords kept in a 0600 file.

These stand in for real people until project policies name members; none exists in a
Helm deployment.
"""

from __future__ import annotations

import json
import secrets

from santelake.policy.baseline import COMPLIANCE, DATA_ENGINEERS, PLATFORM_ADMINS, RESEARCHERS
from santelake.runtime.layout import Layout
from santelake.runtime.secrets import write_private

# user -> groups; "bob" is authenticated but granted nothing, to prove default-deny.
DEV_USERS: dict[str, tuple[str, ...]] = {
    "alice": (RESEARCHERS,),
    "bob": (),
    "dana": (DATA_ENGINEERS,),
    "chloe": (COMPLIANCE,),
    "pat": (PLATFORM_ADMINS,),
}


def group_members() -> dict[str, list[str]]:
    members: dict[str, list[str]] = {}
    for user, groups in DEV_USERS.items():
        for group in groups:
            members.setdefault(group, []).append(user)
    return members


def passwords(layout: Layout) -> dict[str, str]:
    """Each dev user's password, generated once."""
    path = layout.users_file
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for user in DEV_USERS:
        if not known.get(user):
            known[user] = secrets.token_urlsafe(18)
            changed = True
    if changed:
        write_private(path, json.dumps(known, indent=2, sort_keys=True) + "\n")
    return {user: known[user] for user in DEV_USERS}
