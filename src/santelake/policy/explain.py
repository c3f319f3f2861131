"""Who sees what, for reviewers: per user and table, the columns, masks, rows, rule and end date.

It follows the compiled rules' order (see ``compile``): staff-only schemas, then data
engineers, then each active project, then shared tables; the integration tests check the
real Trino against it, so this answer and the enforced one cannot drift apart unnoticed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from santelake.policy.grants import column_grants
from santelake.policy.model import Mask, PolicySet, RowFilter, StaffRole
from santelake.schema import TableSchema


@dataclass(frozen=True)
class TableAccess:
    table: str
    columns: tuple[tuple[str, str], ...]  # (column, "clear" or the mask), visible columns only
    hidden: tuple[str, ...]
    rows: str
    via: str
    until: dt.date | None
    project: str | None = None
    masks: tuple[Mask, ...] = ()
    row_filters: tuple[RowFilter, ...] = ()

    def summary(self) -> str:
        shown = ", ".join(c if how == "clear" else f"{c} [{how}]" for c, how in self.columns) or "every column"
        until = f" until {self.until}" if self.until else ""
        return f"{self.table}: {shown}; rows: {self.rows}; via {self.via}{until}"


def user_access(policies: PolicySet, schemas: Mapping[str, TableSchema], day: dt.date,
                user: str) -> list[TableAccess]:
    """What ``user`` may read on ``day``, one entry per table, sorted by table."""
    roles = policies.roles_of(user)
    staff_only = {s.schema: s for s in policies.platform.staff_only}
    tables = sorted({*schemas, *(t.full_name for t in policies.platform.shared_tables)})
    active = sorted((p for p in policies.active_projects(day) if user in p.members), key=lambda p: p.id)
    found = []
    for name in tables:
        namespace = name.split(".")[0]
        declared = schemas.get(name)
        everything = tuple((c.name, "clear") for c in declared.lake_columns) if declared else ()
        if namespace in staff_only:
            rule = staff_only[namespace]
            granted = [r for r in rule.roles if r in roles]
            if granted:
                found.append(TableAccess(name, everything, (), "all rows", f"staff role {granted[0]} "
                                         f"({rule.origin})", None))
            continue
        if StaffRole.DATA_ENGINEER in roles:
            origin = policies.staff_origins[StaffRole.DATA_ENGINEER][
                policies.staff[StaffRole.DATA_ENGINEER].index(user)]
            found.append(TableAccess(name, everything, (), "all rows", f"staff role data_engineer ({origin})", None))
            continue
        match = next(((p, d) for p in active for d in p.datasets if d.full_name == name), None)
        if match and declared:
            project, dataset = match
            grants = column_grants(dataset, declared)
            columns = tuple((g.column.name, g.mask.describe() if g.mask else "clear") for g in grants if g.granted)
            hidden = tuple(g.column.name for g in grants if not g.granted)
            rows = " and ".join(r.describe() for r in dataset.rows) or "all rows"
            found.append(TableAccess(name, columns, hidden, rows, f"project {project.id} ({dataset.origin})",
                                     project.end, project.id, dataset.masks, dataset.rows))
            continue
        shared = next((t for t in policies.platform.shared_tables if t.full_name == name), None)
        if shared and active:
            found.append(TableAccess(name, everything, (), "all rows", f"shared table ({shared.origin})",
                                     max(p.end for p in active)))
    return found


def column_readers(policies: PolicySet, schemas: Mapping[str, TableSchema], day: dt.date,
                   table: str, column: str) -> list[tuple[str, str, str]]:
    """Who can see ``table.column`` on ``day``: (user, how, via)."""
    readers = []
    for person in policies.people:
        for access in user_access(policies, schemas, day, person.username):
            if access.table == table:
                how = dict(access.columns).get(column)
                if how:
                    readers.append((person.username, how, access.via))
    return readers
