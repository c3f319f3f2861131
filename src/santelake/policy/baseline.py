"""The baseline access policy until project policies exist: deny by default.

Every section of Trino's file-based access control is written out, because a missing
section means "allow". Staff groups get what their role needs; researchers get read-only
access to the ``demo`` schema only; anyone else, although authenticated, sees nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

CATALOG = "iceberg"
DATA_ENGINEERS = "data_engineers"
PLATFORM_ADMINS = "platform_admins"
COMPLIANCE = "compliance"
RESEARCHERS = "researchers"
GROUPS = (DATA_ENGINEERS, PLATFORM_ADMINS, COMPLIANCE, RESEARCHERS)
RESEARCH_SCHEMA = "demo"

ALL_TABLE_PRIVILEGES = ["SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP", "GRANT_SELECT"]


def trino_rules() -> dict[str, object]:
    return {
        "catalogs": [
            {"group": DATA_ENGINEERS, "catalog": CATALOG, "allow": "all"},
            {"group": RESEARCHERS, "catalog": CATALOG, "allow": "read-only"},
        ],
        "schemas": [
            {"group": DATA_ENGINEERS, "catalog": CATALOG, "owner": True},
        ],
        "tables": [
            {"group": DATA_ENGINEERS, "catalog": CATALOG, "privileges": ALL_TABLE_PRIVILEGES},
            # "[^$]*" keeps Iceberg metadata tables (t$files, t$partitions, ...) out of reach.
            {"group": RESEARCHERS, "catalog": CATALOG, "schema": RESEARCH_SCHEMA, "table": "[^$]*",
             "privileges": ["SELECT"]},
        ],
        "functions": [
            {"group": DATA_ENGINEERS, "catalog": CATALOG, "privileges": ["EXECUTE"]},
        ],
        "procedures": [
            {"group": DATA_ENGINEERS, "catalog": CATALOG, "privileges": ["EXECUTE"]},
        ],
        "queries": [
            {"group": PLATFORM_ADMINS, "allow": ["execute", "kill", "view"]},
            {"allow": ["execute"]},
        ],
        # This section matches users and roles, not groups: nobody reads node information yet.
        "system_information": [],
        "system_session_properties": [
            {"group": PLATFORM_ADMINS, "allow": True},
        ],
        "catalog_session_properties": [
            {"group": DATA_ENGINEERS, "allow": True},
        ],
        "impersonation": [],
        "authorization": [],
    }


def trino_rules_json() -> str:
    return json.dumps(trino_rules(), indent=2, sort_keys=True) + "\n"


def trino_group_file(members: Mapping[str, Sequence[str]]) -> str:
    """Trino's file group provider format: ``group:user1,user2``, one group a line."""
    lines = []
    for group in sorted(members):
        users = sorted(set(members[group]))
        if users:
            lines.append(f"{group}:{','.join(users)}")
    return "\n".join(lines) + "\n"
