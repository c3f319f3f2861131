"""Keycloak groups and memberships from compiled policies, applied idempotently.

santelake manages only the groups it compiles (staff groups, ``researchers``, one group per
project): each is created if missing and its members set to exactly the compiled ones.
Other groups and users are left alone; a compiled member unknown to Keycloak is reported.
"""

from __future__ import annotations

from typing import Any

from santelake.policy.compile import Compiled


def sync_groups(admin: Any, compiled: Compiled) -> list[str]:
    """Bring Keycloak to ``compiled``; returns what changed (nothing on a second run)."""
    changes: list[str] = []
    existing = {g["name"]: g["id"] for g in admin.get_groups()}
    user_ids: dict[str, str | None] = {}
    for group in compiled.groups:
        if group not in existing:
            existing[group] = admin.create_group({"name": group})
            changes.append(f"created group {group}")
        group_id = existing[group]
        current = {m["username"]: m["id"] for m in admin.get_group_members(group_id)}
        wanted = set(compiled.members.get(group, ()))
        for user in sorted(wanted - set(current)):
            if user not in user_ids:
                user_ids[user] = admin.get_user_id(user)
            user_id = user_ids[user]
            if user_id is None:
                changes.append(f"skipped {user} in {group}: no such Keycloak user")
                continue
            admin.group_user_add(user_id, group_id)
            changes.append(f"added {user} to {group}")
        for user in sorted(set(current) - wanted):
            admin.group_user_remove(current[user], group_id)
            changes.append(f"removed {user} from {group}")
    return changes
