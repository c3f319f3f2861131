"""Users of the local development stack, with generated passwords kept in a 0600 file.

They stand in for the people named in policies/ (people.yaml); their groups come from the
compiled policies. None exists in a Helm deployment.
"""

from __future__ import annotations

import json
import secrets

from santelake.files import write_private
from santelake.runtime.layout import Layout

# alice: researcher on an active project; bob: only on an ended one, so granted nothing;
# dana: data engineer; chloe: compliance officer; pat: platform admin (policies/).
DEV_USERS: tuple[str, ...] = ("alice", "bob", "dana", "chloe", "pat")


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
