"""The lake's figures for the catalogue: rows, persons, period covered and last load of each table,
and the quality report of its latest loads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pyarrow.compute as pc
from pyiceberg.types import DateType

from santelake.catalogue.site import QUALITY_LOADS, Coverage, LoadReport
from santelake.lake.stream import file_by_file
from santelake.schema import TableSchema

FILES_TABLE = ("ops", "ingested_files")
QUARANTINE_TABLE = ("ops", "quarantine")
LOAD_FIELDS = ("file_sha256", "target_table", "status", "row_count", "quarantined_count", "loaded_at", "new_count",
               "updated_count", "refused_count", "opposed_count")


def _loads(catalog: Any) -> list[dict[str, Any]]:
    """Every load ``ops.ingested_files`` records, newest first (read once per build)."""
    if not catalog.table_exists(FILES_TABLE):
        return []
    files = catalog.load_table(FILES_TABLE).scan(selected_fields=LOAD_FIELDS).to_arrow().to_pylist()
    return sorted(files, key=lambda row: row["loaded_at"], reverse=True)


def _last_published(loads: list[dict[str, Any]]) -> dict[str, dt.datetime]:
    """Each table's last published load (``loads`` newest first)."""
    last: dict[str, dt.datetime] = {}
    for row in loads:
        if row["status"] == "published":
            last.setdefault(row["target_table"], row["loaded_at"])
    return last


def _checks(catalog: Any, files: set[str]) -> dict[tuple[str, str], dict[str, int]]:
    """Rows each of ``files`` (by SHA-256) set aside, per table and check (``ops.quarantine``: no row read)."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    if not files or not catalog.table_exists(QUARANTINE_TABLE):
        return counts
    for batch in file_by_file(catalog.load_table(QUARANTINE_TABLE), ("target_table", "file_sha256", "rule")):
        columns = batch.to_pydict()
        for table, sha, rule in zip(columns["target_table"], columns["file_sha256"], columns["rule"], strict=True):
            if sha in files:
                per_check = counts.setdefault((table, sha), {})
                per_check[rule] = per_check.get(rule, 0) + 1
    return counts


def load_reports(catalog: Any, loads: list[dict[str, Any]],
                 keep: int = QUALITY_LOADS) -> dict[str, tuple[LoadReport, ...]]:
    """Each table's latest ``keep`` of ``loads`` (newest first), with the checks that set their rows aside."""
    latest: dict[str, list[dict[str, Any]]] = {}
    for row in loads:
        kept = latest.setdefault(row["target_table"], [])
        if len(kept) < keep:
            kept.append(row)
    checks = _checks(catalog, {row["file_sha256"] for rows in latest.values() for row in rows})

    def report(table: str, row: dict[str, Any]) -> LoadReport:
        found = checks.get((table, row["file_sha256"]), {})
        return LoadReport(loaded_at=row["loaded_at"], status=row["status"], rows=row["row_count"],
                          new=row["new_count"], updated=row["updated_count"], refused=row["refused_count"],
                          opposed=row["opposed_count"], quarantined=row["quarantined_count"],
                          checks=tuple(sorted(found.items(), key=lambda item: (-item[1], item[0]))))

    return {table: tuple(report(table, row) for row in rows) for table, rows in latest.items()}


def coverage(catalog: Any, tables: Sequence[TableSchema]) -> dict[str, Coverage]:
    """Each table's figures, read from the lake (one column at a time, a data file at a time)."""
    history = _loads(catalog)
    loads = _last_published(history)
    reports = load_reports(catalog, history)
    found = {}
    for declared in tables:
        if not catalog.table_exists(declared.identifier):
            continue
        table = catalog.load_table(declared.identifier)
        snapshot = table.current_snapshot()
        rows = int(snapshot.summary.additional_properties.get("total-records", 0)) if snapshot and \
            snapshot.summary else 0
        persons = None
        if declared.person_columns and snapshot is not None:
            seen: set[str] = set()
            column = declared.person_columns[0].name
            for batch in file_by_file(table, (column,)):
                seen.update(pc.unique(batch.column(column)).drop_null().to_pylist())
            persons = len(seen)
        first = last = None
        # The period covered: the date the table is partitioned by (the event's date); a table
        # not partitioned by a date (beneficiaries: a birth month is no period of care) has none.
        dates = {c.name for c in declared.lake_columns if isinstance(c.type, DateType)}
        dated = next((p.column for p in declared.partition_by if p.column in dates), None)
        if dated and snapshot is not None:
            for batch in file_by_file(table, (dated,)):
                bounds = pc.min_max(batch.column(dated)).as_py()
                if bounds["min"] is not None:
                    first = bounds["min"] if first is None else min(first, bounds["min"])
                    last = bounds["max"] if last is None else max(last, bounds["max"])
        found[declared.full_name] = Coverage(rows, persons, first, last, loads.get(declared.full_name),
                                             reports.get(declared.full_name, ()))
    return found
