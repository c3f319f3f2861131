"""The access matrix, generated from policies/: every person x every table, against the real Trino.

An allowed cell must return exactly the permitted rows, with exactly the permitted columns and
masked values (computed here in Python from the synthetic rows); a denied cell must be refused,
and so must each hidden column on its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest
import trino.exceptions

from santelake.policy.build import Build
from santelake.policy.explain import TableAccess, user_access
from santelake.policy.model import Mask, MaskKind, RowFilter
from santelake.schema import TableSchema
from tests.integration.policy import lakedata

pytestmark = pytest.mark.integration

PEOPLE = ("alice", "bob", "dana", "chloe", "pat")
TABLES = sorted(lakedata.ROWS)


def _masked(value: Any, mask: Mask, project: str) -> Any:
    if value is None:
        return None
    if mask.kind is MaskKind.YEAR:
        return dt.date(value.year, 1, 1)
    if mask.kind is MaskKind.MONTH:
        return dt.date(value.year, value.month, 1)
    if mask.kind is MaskKind.PREFIX:
        return value[: mask.length]
    return hashlib.sha256(f"santelake-project:{project}:{value}".encode()).hexdigest()


def _kept(row: dict[str, Any], rule: RowFilter) -> bool:
    value = row[rule.column]
    if value is None:
        return False
    if rule.values:
        return value in rule.values
    return rule.low <= value <= rule.high  # type: ignore[operator]


def stored_rows(catalog: Any, table: str) -> list[dict[str, Any]]:
    """Every row as pyiceberg reads it, around Trino: the oracle's input."""
    rows: list[dict[str, Any]] = catalog.load_table(tuple(table.split("."))).scan().to_arrow().to_pylist()
    return rows


def expected_rows(access: TableAccess, stored: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What the policy promises: the permitted rows, columns and masked values."""
    masks = {m.column: m for m in access.masks}
    rows = [r for r in stored if all(_kept(r, f) for f in access.row_filters)]
    out = []
    for row in rows:
        out.append(tuple(_masked(row[c], masks[c], access.project or "") if c in masks else row[c]
                         for c, _ in access.columns))
    return sorted(out, key=repr)


def _access(policy: Build, lake: dict[str, TableSchema], user: str, table: str) -> TableAccess | None:
    found = [a for a in user_access(policy.policies, lake, dt.date.today(), user) if a.table == table]
    return found[0] if found else None


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("user", PEOPLE)
def test_cell(sql: Any, catalog: Any, policy: Build, lake: dict[str, TableSchema], user: str, table: str) -> None:
    access = _access(policy, lake, user, table)
    if access is None:
        with pytest.raises(trino.exceptions.TrinoUserError, match="Access Denied"):
            sql(user, f"SELECT count(*) FROM iceberg.{table}")
        return
    columns = ", ".join(c for c, _ in access.columns)
    got = sorted(sql(user, f"SELECT {columns} FROM iceberg.{table}"), key=repr)
    assert [tuple(_plain(v) for v in row) for row in got] == expected_rows(access, stored_rows(catalog, table))
    for hidden in access.hidden:
        with pytest.raises(trino.exceptions.TrinoUserError, match="Access Denied"):
            sql(user, f"SELECT {hidden} FROM iceberg.{table}")


def _plain(value: Any) -> Any:
    # Trino returns timestamptz with zone info the rows were written with: compare as UTC.
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    return value


def test_the_matrix_has_allowed_and_denied_cells(policy: Build, lake: dict[str, TableSchema]) -> None:
    cells = [_access(policy, lake, u, t) for u in PEOPLE for t in TABLES]
    allowed = [c for c in cells if c is not None]
    assert len(allowed) >= 5 and len(cells) - len(allowed) >= 15
    assert any(c.masks for c in allowed) and any(c.row_filters for c in allowed) and any(c.hidden for c in allowed)


def test_researchers_keep_the_shared_demo_table(sql: Any, policy: Build) -> None:
    assert sql("alice", "SELECT count(*) FROM iceberg.ref.icd10_chapters") == [(22,)]
    with pytest.raises(trino.exceptions.TrinoUserError, match="Access Denied"):
        sql("bob", "SELECT count(*) FROM iceberg.ref.icd10_chapters")
