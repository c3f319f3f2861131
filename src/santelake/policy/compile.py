"""Compile policies into Trino file-based access rules, Trino's group file and Keycloak groups,
and name the group that administers Airflow.

Deterministic: the same policies, table schemas and day give byte-identical output. Every
section of Trino's rules is written, because a missing section means "allow all"; within
a section Trino applies the first rule that matches, so the order below is the policy:

1. staff-only schemas (ops in the lake, audit in a catalog of its own): their roles first, then a
   deny for everyone else;
2. data engineers: the whole lake catalog;
3. Iceberg metadata tables (``t$files``, ``t$snapshots``...): denied to everyone else;
4. each active project's datasets: exact table names, hidden columns, masks, row filters;
5. shared tables for every member of an active project;
6. platform admins: the system catalog's runtime tables;
anything else matches no rule and is denied. An expired project compiles to nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from santelake.policy.errors import Fault, PolicyError, Severity
from santelake.policy.grants import column_grants
from santelake.policy.model import Dataset, Mask, MaskKind, PolicySet, Project, RowFilter, StaffRole
from santelake.schema import TableSchema

SYSTEM_CATALOG = "system"
RESEARCHERS = "researchers"
ROLE_GROUPS: dict[StaffRole, str] = {
    StaffRole.DATA_ENGINEER: "data_engineers",
    StaffRole.COMPLIANCE_OFFICER: "compliance",
    StaffRole.PLATFORM_ADMIN: "platform_admins",
}
# The staff role whose group is Airflow's Admin; any other user who logs in to Airflow gets nothing.
AIRFLOW_ADMIN_ROLE = StaffRole.PLATFORM_ADMIN
ALL_TABLE_PRIVILEGES = ("SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP", "GRANT_SELECT")
# What a staff role may do in a staff-only schema it is named for.
STAFF_ONLY_PRIVILEGES: dict[StaffRole, tuple[str, ...]] = {
    StaffRole.DATA_ENGINEER: ALL_TABLE_PRIVILEGES,
    StaffRole.COMPLIANCE_OFFICER: ("SELECT",),
    StaffRole.PLATFORM_ADMIN: ("SELECT",),
}
PSEUDONYM_DOMAIN = "santelake-project"


def pattern(name: str) -> str:
    """A Java regular expression matching exactly ``name`` (Trino matches rules in full)."""
    return re.escape(name)


def sql_literal(value: str | int | dt.date) -> str:
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def mask_expression(mask: Mask, project: Project) -> str:
    """The SQL Trino evaluates in place of the column; its type is the column's own."""
    column = quoted(mask.column)
    if mask.kind is MaskKind.YEAR:
        return f"date_trunc('year', {column})"
    if mask.kind is MaskKind.MONTH:
        return f"date_trunc('month', {column})"
    if mask.kind is MaskKind.PREFIX:
        return f"substr({column}, 1, {mask.length})"
    # A pseudonym of the stored pseudonym, salted with the project: stable inside a project so
    # its tables join, different across projects so two projects cannot link their people.
    # The stored value is already a keyed HMAC, so the salt need not be secret.
    salt = sql_literal(f"{PSEUDONYM_DOMAIN}:{project.id}:")
    return f"lower(to_hex(sha256(to_utf8({salt} || {column}))))"


def filter_expression(rows: Sequence[RowFilter]) -> str:
    parts = []
    for row in rows:
        column = quoted(row.column)
        if row.values:
            parts.append(f"{column} IN ({', '.join(sql_literal(v) for v in row.values)})")
        else:
            assert row.low is not None and row.high is not None
            parts.append(f"{column} BETWEEN {sql_literal(row.low)} AND {sql_literal(row.high)}")
    return " AND ".join(parts)


def dataset_rule(project: Project, dataset: Dataset, table: TableSchema, catalog: str) -> dict[str, Any]:
    columns: list[dict[str, Any]] = []
    for grant in column_grants(dataset, table):
        if not grant.granted:
            columns.append({"name": grant.column.name, "allow": False})
        elif grant.mask is not None:
            columns.append({"name": grant.column.name, "mask": mask_expression(grant.mask, project)})
    rule: dict[str, Any] = {
        "group": pattern(project.group), "catalog": pattern(catalog), "schema": pattern(dataset.namespace),
        "table": pattern(dataset.table), "privileges": ["SELECT"],
    }
    if columns:
        rule["columns"] = columns
    if dataset.rows:
        rule["filter"] = filter_expression(dataset.rows)
    return rule


@dataclass(frozen=True)
class Compiled:
    """Compile output: Trino rules, group members (Trino and Keycloak), the managed groups and
    the group Keycloak's authorisation makes Airflow's Admin."""

    rules: dict[str, list[dict[str, Any]]]
    members: dict[str, tuple[str, ...]]  # group -> users, only groups that have members
    groups: tuple[str, ...]  # every group santelake manages, active or not
    airflow_admins: str  # one of ``groups``

    @property
    def rules_json(self) -> str:
        return json.dumps(self.rules, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @property
    def group_file(self) -> str:
        return trino_group_file(self.members)


def trino_group_file(members: Mapping[str, Sequence[str]]) -> str:
    """Trino's file group provider format: ``group:user1,user2``, one group a line."""
    lines = [f"{group}:{','.join(sorted(set(users)))}" for group, users in sorted(members.items()) if users]
    return "\n".join(lines) + "\n"


def group_members(policies: PolicySet, day: dt.date) -> dict[str, tuple[str, ...]]:
    members: dict[str, set[str]] = {}
    for role, group in ROLE_GROUPS.items():
        members.setdefault(group, set()).update(policies.staff.get(role, ()))
    for project in policies.active_projects(day):
        members.setdefault(project.group, set()).update(project.members)
        members.setdefault(RESEARCHERS, set()).update(project.members)
    return {group: tuple(sorted(users)) for group, users in sorted(members.items()) if users}


def _staff_catalog_rules(policies: PolicySet) -> list[dict[str, Any]]:
    """Catalogs of their own that hold staff-only schemas (the audit trail's): read-only for the roles
    named, then closed to everyone else."""
    rules: list[dict[str, Any]] = []
    lake = policies.platform.catalog
    for rule in sorted(policies.platform.staff_only, key=lambda r: (r.catalog or lake, r.schema)):
        if rule.catalog is None or rule.catalog == lake:
            continue
        catalog = pattern(rule.catalog)
        rules += [{"group": pattern(ROLE_GROUPS[role]), "catalog": catalog, "allow": "read-only"}
                  for role in sorted(rule.roles)]
        rules.append({"catalog": catalog, "allow": "none"})
    return rules


def _staff_only_rules(policies: PolicySet) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    schemas: list[dict[str, Any]] = []
    tables: list[dict[str, Any]] = []
    lake = policies.platform.catalog
    for rule in sorted(policies.platform.staff_only, key=lambda r: (r.catalog or lake, r.schema)):
        catalog = pattern(rule.catalog or lake)
        schema = pattern(rule.schema)
        for role in sorted(rule.roles):
            group = pattern(ROLE_GROUPS[role])
            schemas.append({"group": group, "catalog": catalog, "schema": schema,
                            "owner": role is StaffRole.DATA_ENGINEER})
            tables.append({"group": group, "catalog": catalog, "schema": schema,
                           "privileges": list(STAFF_ONLY_PRIVILEGES[role])})
        schemas.append({"catalog": catalog, "schema": schema, "owner": False})
        tables.append({"catalog": catalog, "schema": schema, "privileges": []})
    return schemas, tables


def compile_policies(policies: PolicySet, schemas: Mapping[str, TableSchema], day: dt.date,
                     faults: Sequence[Fault] = ()) -> Compiled:
    """Compile; refuses (``PolicyError``) while ``faults`` (from lint) holds an error."""
    errors = [f for f in faults if f.severity is Severity.ERROR]
    if errors:
        raise PolicyError(errors)
    platform = policies.platform
    catalog = pattern(platform.catalog)
    engineers = pattern(ROLE_GROUPS[StaffRole.DATA_ENGINEER])
    admins = pattern(ROLE_GROUPS[StaffRole.PLATFORM_ADMIN])
    active = sorted(policies.active_projects(day), key=lambda p: p.id)
    members = group_members(policies, day)
    readers = sorted({ROLE_GROUPS[StaffRole.COMPLIANCE_OFFICER], *(p.group for p in active),
                      *([RESEARCHERS] if active else [])})

    staff_schemas, staff_tables = _staff_only_rules(policies)
    project_tables = [dataset_rule(project, dataset, schemas[dataset.full_name], platform.catalog)
                      for project in active for dataset in project.datasets]
    shared_tables = [{"group": pattern(RESEARCHERS), "catalog": catalog, "schema": pattern(t.namespace),
                      "table": pattern(t.table), "privileges": ["SELECT"]} for t in platform.shared_tables]
    admin_users = policies.staff.get(StaffRole.PLATFORM_ADMIN, ())
    rules: dict[str, list[dict[str, Any]]] = {
        "catalogs": [
            *_staff_catalog_rules(policies),
            {"group": engineers, "catalog": catalog, "allow": "all"},
            *({"group": pattern(group), "catalog": catalog, "allow": "read-only"} for group in readers),
            {"group": admins, "catalog": pattern(SYSTEM_CATALOG), "allow": "read-only"},
            # Trino lets everyone into the system catalog unless a rule says otherwise.
            {"catalog": pattern(SYSTEM_CATALOG), "allow": "none"},
        ],
        "schemas": [
            *staff_schemas,
            {"group": engineers, "catalog": catalog, "owner": True},
        ],
        "tables": [
            *staff_tables,
            {"group": engineers, "catalog": catalog, "privileges": list(ALL_TABLE_PRIVILEGES)},
            # Metadata tables expose file paths, column bounds and snapshots: never outside staff.
            {"catalog": catalog, "table": r".*\$.*", "privileges": []},
            *project_tables,
            *shared_tables,
            {"group": admins, "catalog": pattern(SYSTEM_CATALOG), "schema": "runtime", "privileges": ["SELECT"]},
        ],
        "functions": [
            {"group": engineers, "catalog": catalog, "privileges": ["EXECUTE"]},
        ],
        "procedures": [
            {"group": engineers, "catalog": catalog, "privileges": ["EXECUTE"]},
            {"group": admins, "catalog": pattern(SYSTEM_CATALOG), "schema": "runtime", "procedure": "kill_query",
             "privileges": ["EXECUTE"]},
        ],
        "queries": [
            {"group": admins, "allow": ["execute", "kill", "view"]},
            {"allow": ["execute"]},
        ],
        # This section matches users and roles, not groups.
        "system_information": [{"user": pattern(user), "allow": ["read", "write"]} for user in sorted(admin_users)],
        "system_session_properties": [{"group": admins, "allow": True}],
        "catalog_session_properties": [{"group": engineers, "allow": True}],
        "impersonation": [],
        "authorization": [],
    }
    groups = sorted({*ROLE_GROUPS.values(), RESEARCHERS, *(p.group for p in policies.projects)})
    return Compiled(rules=rules, members=members, groups=tuple(groups),
                    airflow_admins=ROLE_GROUPS[AIRFLOW_ADMIN_ROLE])
