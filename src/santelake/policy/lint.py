"""Check policies against the table schemas and the platform rules; every fault has a file and line.

Faults by kind (``FaultKind``): shape (from the loader), unknown tables, columns and people,
direct identifiers reached without the platform's mask, a missing or unaccepted legal basis,
dates out of order, staff-only schemas granted to projects, grants above a sensitivity
ceiling, masks that do not fit their column, row filters whose values do not fit, and rules
that conflict with or are shadowed by another (Trino applies only the first that matches).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from itertools import combinations
from pathlib import Path

from pyiceberg.types import DateType, IntegerType, LongType, StringType, TimestampType, TimestamptzType

from santelake.policy.errors import Fault, FaultKind, Severity
from santelake.policy.grants import column_grants
from santelake.policy.loader import read_policies
from santelake.policy.model import MaskKind, Origin, PolicySet, Project, StaffRole, within
from santelake.schema import Column, Sensitivity, TableSchema, load_schemas

DATE_TYPES = (DateType, TimestampType, TimestamptzType)


def _fault(origin: Origin, kind: FaultKind, message: str, severity: Severity = Severity.ERROR) -> Fault:
    return Fault(origin.path, origin.line, origin.column, kind, origin.key, message, severity)


def _ceiling(policies: PolicySet, project: Project) -> Sensitivity:
    platform = policies.platform
    basis = project.legal_basis
    own = (platform.methodology_ceilings[basis.reference_methodology] if basis.reference_methodology
           else platform.authorisation_ceiling)
    return own if within(own, platform.research_ceiling) else platform.research_ceiling


def _check_people(policies: PolicySet) -> list[Fault]:
    faults = []
    seen: set[str] = set()
    for person in policies.people:
        if person.username in seen:
            faults.append(_fault(person.origin, FaultKind.SCHEMA, f"{person.username!r} is listed twice"))
        seen.add(person.username)
    known = {p.username for p in policies.people}
    named: list[tuple[str, Origin, str]] = []
    for role, users in policies.staff.items():
        named += [(u, o, f"staff role {role}") for u, o in zip(users, policies.staff_origins[role], strict=True)]
    for project in policies.projects:
        named.append((project.responsible, project.responsible_origin, "responsible"))
        named += [(u, o, "member") for u, o in zip(project.members, project.member_origins, strict=True)]
    for user, origin, what in named:
        if user not in known:
            faults.append(_fault(origin, FaultKind.UNKNOWN_PERSON,
                                 f"{what} {user!r} is not in people.yaml; add them there or fix the name"))
    for user in sorted(known):
        roles = policies.roles_of(user)
        if StaffRole.DATA_ENGINEER in roles and StaffRole.COMPLIANCE_OFFICER in roles:
            origin = policies.staff_origins[StaffRole.COMPLIANCE_OFFICER][
                policies.staff[StaffRole.COMPLIANCE_OFFICER].index(user)]
            faults.append(_fault(origin, FaultKind.CONFLICT,
                                 f"{user!r} is both data engineer and compliance officer: the audit trail "
                                 "must stay out of the data engineers' reach"))
    return faults


def _fits_column(value: object, column: Column) -> bool:
    if isinstance(column.type, StringType):
        return isinstance(value, str)
    if isinstance(column.type, IntegerType | LongType):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(column.type, DateType):
        return isinstance(value, dt.date)
    return False


def _check_dataset_columns(policies: PolicySet, project: Project, table: TableSchema,
                           dataset_index: int) -> list[Fault]:
    dataset = project.datasets[dataset_index]
    faults = []
    live = {c.name: c for c in table.lake_columns}
    for name, origin in zip(dataset.columns, dataset.column_origins, strict=True):
        if name not in live:
            faults.append(_fault(origin, FaultKind.UNKNOWN_COLUMN, f"{table.full_name} has no column {name!r}"))
    grants = {g.column.name: g for g in column_grants(dataset, table)}
    if not any(g.granted for g in grants.values()):
        faults.append(_fault(dataset.origin, FaultKind.SCHEMA,
                             "grants no column: list columns or sensitivity classes, or remove the dataset"))
    ceiling = _ceiling(policies, project)
    direct_mask = policies.platform.direct_identifier_mask
    for mask in dataset.masks:
        column = live.get(mask.column)
        if column is None:
            faults.append(_fault(mask.origin, FaultKind.UNKNOWN_COLUMN,
                                 f"{table.full_name} has no column {mask.column!r}"))
        elif not grants[mask.column].granted:
            faults.append(_fault(mask.origin, FaultKind.MASK,
                                 f"masks {mask.column!r}, which the dataset does not grant; grant it or drop the mask"))
        elif mask.kind in (MaskKind.YEAR, MaskKind.MONTH) and not isinstance(column.type, DATE_TYPES):
            faults.append(_fault(mask.origin, FaultKind.MASK, f"{mask.kind} needs a date column; "
                                 f"{mask.column!r} is {column.type}"))
        elif mask.kind in (MaskKind.PREFIX, MaskKind.PROJECT_PSEUDONYM) and not isinstance(column.type, StringType):
            faults.append(_fault(mask.origin, FaultKind.MASK, f"{mask.kind} needs a string column; "
                                 f"{mask.column!r} is {column.type}"))
    for grant in grants.values():
        if not grant.granted:
            continue
        column = grant.column
        if column.sensitivity is Sensitivity.DIRECT_IDENTIFIER:
            if grant.mask is None or grant.mask.kind is not direct_mask:
                faults.append(_fault(dataset.origin, FaultKind.DIRECT_IDENTIFIER,
                                     f"grants direct identifier {table.full_name}.{column.name} ({grant.reason}) "
                                     f"without the {direct_mask} mask; add `masks: {{{column.name}: {direct_mask}}}`"))
        elif not within(column.sensitivity, ceiling):
            faults.append(_fault(dataset.origin, FaultKind.CEILING,
                                 f"grants {table.full_name}.{column.name} ({column.sensitivity}, {grant.reason}) "
                                 f"above the ceiling {ceiling} of legal basis {project.legal_basis}"))
    for row in dataset.rows:
        column = live.get(row.column)
        if column is None:
            faults.append(_fault(row.column_origin, FaultKind.UNKNOWN_COLUMN,
                                 f"{table.full_name} has no column {row.column!r}"))
            continue
        values = row.values or (row.low, row.high)
        wrong = [v for v in values if not _fits_column(v, column)]
        if wrong:
            faults.append(_fault(row.origin, FaultKind.ROW_FILTER,
                                 f"{wrong[0]!r} does not fit {row.column!r} ({column.type}); quote text, "
                                 "write dates as YYYY-MM-DD"))
        elif row.low is not None and row.high is not None and row.low > row.high:  # type: ignore[operator]
            faults.append(_fault(row.origin, FaultKind.ROW_FILTER, f"between {row.low} and {row.high} is empty"))
    return faults


def _check_projects(policies: PolicySet, schemas: Mapping[str, TableSchema], day: dt.date) -> list[Fault]:
    faults = []
    platform = policies.platform
    staff_only = {s.schema: s for s in platform.staff_only}
    shared = {t.full_name for t in platform.shared_tables}
    for project in policies.projects:
        basis = project.legal_basis
        if basis.reference_methodology and basis.reference_methodology not in platform.methodology_ceilings:
            faults.append(_fault(basis.origin, FaultKind.LEGAL_BASIS,
                                 f"{basis.reference_methodology} is not an accepted reference methodology "
                                 f"({', '.join(platform.methodology_ceilings)}); see platform.yaml"))
            continue
        if project.end < project.start:
            faults.append(_fault(project.origin, FaultKind.DATES,
                                 f"ends ({project.end}) before it starts ({project.start})"))
        seen: dict[str, Origin] = {}
        for index, dataset in enumerate(project.datasets):
            name = dataset.full_name
            if name in seen:
                faults.append(_fault(dataset.origin, FaultKind.CONFLICT,
                                     f"{name} is granted twice in this project (first at line {seen[name].line}); "
                                     "Trino would apply only the first"))
                continue
            seen[name] = dataset.origin
            if dataset.namespace in staff_only:
                rule = staff_only[dataset.namespace]
                faults.append(_fault(dataset.origin, FaultKind.STAFF_ONLY,
                                     f"schema {dataset.namespace!r} is for {', '.join(rule.roles)} only "
                                     f"({rule.origin}); no project may be granted {name}"))
                continue
            if name in shared:
                faults.append(_fault(dataset.origin, FaultKind.SHADOWED,
                                     f"{name} is a shared table: every project member reads it already",
                                     Severity.WARNING))
            table = schemas.get(name)
            if table is None:
                faults.append(_fault(dataset.origin, FaultKind.UNKNOWN_TABLE,
                                     f"no table {name} in iceberg_schemas/; known: {', '.join(sorted(schemas))}"))
                continue
            faults += _check_dataset_columns(policies, project, table, index)
        for user, origin in zip(project.members, project.member_origins, strict=True):
            if StaffRole.DATA_ENGINEER in policies.roles_of(user) and project.end >= day:
                faults.append(_fault(origin, FaultKind.SHADOWED,
                                     f"{user!r} is a data engineer: the staff rule comes first, so this project's "
                                     "masks and row filters do not apply to them", Severity.WARNING))
    faults += _check_overlaps(policies, day)
    return faults


def _check_overlaps(policies: PolicySet, day: dt.date) -> list[Fault]:
    """Two current projects sharing a member and a table: Trino would apply only the first rule."""
    faults = []
    current = sorted((p for p in policies.projects if p.end >= day), key=lambda p: p.id)
    for first, second in combinations(current, 2):
        if first.end < second.start or second.end < first.start:
            continue
        common = sorted(set(first.members) & set(second.members))
        tables = {d.full_name for d in first.datasets}
        for dataset in second.datasets:
            if dataset.full_name in tables and common:
                faults.append(_fault(dataset.origin, FaultKind.CONFLICT,
                                     f"{', '.join(common)} also read {dataset.full_name} through project "
                                     f"{first.id} ({first.origin.path}); Trino applies only the first rule, so "
                                     "their access would depend on file order: split the membership or merge "
                                     "the projects"))
    return faults


def _check_shared(policies: PolicySet, schemas: Mapping[str, TableSchema]) -> list[Fault]:
    faults = []
    for table in policies.platform.shared_tables:
        declared = schemas.get(table.full_name)
        if declared is None:
            faults.append(_fault(table.origin, FaultKind.UNKNOWN_TABLE,
                                 f"shared table {table.full_name} is not declared in iceberg_schemas/"))
            continue
        personal = [c.name for c in declared.lake_columns if c.sensitivity is not Sensitivity.NON_SENSITIVE]
        if personal:
            faults.append(_fault(table.origin, FaultKind.CEILING,
                                 f"shared table {table.full_name} holds personal columns ({', '.join(personal)}); "
                                 "grant it through a project instead"))
    return faults


def lint(policies: PolicySet, schemas: Mapping[str, TableSchema], day: dt.date) -> list[Fault]:
    """Every fault of a well-formed policy set, sorted by file and line."""
    faults = _check_people(policies) + _check_projects(policies, schemas, day) + _check_shared(policies, schemas)
    return sorted(set(faults))


def lint_directory(policies_dir: Path, schemas_dir: Path, day: dt.date) -> tuple[PolicySet | None, list[Fault]]:
    """Shape faults if any file is malformed, else every semantic fault."""
    policies, faults = read_policies(policies_dir)
    if policies is None:
        return None, faults
    schemas = {t.full_name: t for t in load_schemas(schemas_dir)}
    return policies, lint(policies, schemas, day)
