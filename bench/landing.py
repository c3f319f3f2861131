"""Landed to queryable through the Airflow scheduler, beside the load's own time.

For a synthetic outpatient-claims file of --rows rows (and the beneficiaries it names), it
  1. loads both with the loader directly, into a scratch namespace: the load's own time;
  2. lands both in the landing bucket of the running stack and waits, without calling any
     load, until the scheduler's `ingest` DAG has published each (its snapshot appears in
     the table): landed-to-queryable, and what the scheduler adds (poll wait, task start,
     download) is the difference;
  3. confirms through Trino (as the data engineer dana) that the rows are queryable, then puts
     the demo lake back: the two tables rolled back to their snapshots before the run, the
     bench snapshots expired and their ops records deleted, so a second run measures again.
The stack must be up (santelake up) and idle. Results print as a table.

usage: .venv/bin/python bench/landing.py [--rows 10000000] [--work DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from santelake.access import query
from santelake.access.token import dev_token
from santelake.config import load_settings
from santelake.digest import file_sha256
from santelake.ingest import runner
from santelake.ingest.landing import Landing
from santelake.ingest.load import SOURCE_HASH, Loader
from santelake.lake.catalog import open_catalog
from santelake.runtime.layout import Layout
from santelake.runtime.platform import platform_settings
from santelake.synth import synthesize

TABLES = ("beneficiaries", "outpatient_claims")
FILES = {"beneficiaries": "beneficiaries.csv", "outpatient_claims": "outpatient_claims.csv"}


def own_times(settings: Any, work: Path) -> dict[str, float]:
    """Seconds the loader takes for each file, alone, into a namespace of its own."""
    catalog = open_catalog(settings)
    namespace = "bench_" + uuid.uuid4().hex[:8]
    schemas = {n: dataclasses.replace(d, namespace=namespace) for n, d in runner.schemas().items()}
    loader = Loader(catalog, runner.pseudonymiser(settings), schemas, gx_dir=work / "gx")
    times = {}
    try:
        for table in TABLES:
            started = time.perf_counter()
            result = loader.load(f"snds.{table}", work / FILES[table])
            times[table] = time.perf_counter() - started
            assert result.status == "published", result
    finally:
        for identifier in catalog.list_tables(namespace):
            catalog.purge_table(identifier)
        catalog.drop_namespace(namespace)
    return times


def published_snapshot(table: Any, sha: str) -> Any | None:
    table.refresh()
    for snapshot in table.metadata.snapshots:
        if snapshot.summary and snapshot.summary.additional_properties.get(SOURCE_HASH) == sha:
            return snapshot
    return None


def restore(catalog: Any, declared: dict[str, Any], before: dict[str, int], shas: list[str]) -> None:
    """The demo lake as it was: each table back to its snapshot, the bench's snapshots and records gone."""
    for table_name, snapshot_id in before.items():
        table = catalog.load_table(declared[f"snds.{table_name}"].identifier)
        added = [s.snapshot_id for s in table.metadata.snapshots
                 if s.summary and s.summary.additional_properties.get(SOURCE_HASH) in shas]
        if table.current_snapshot().snapshot_id != snapshot_id:
            table.manage_snapshots().set_current_snapshot(snapshot_id).commit()
        if added:
            table.maintenance.expire_snapshots().by_ids(added).commit()
    files = catalog.load_table(declared["ops.ingested_files"].identifier)
    files.delete(" OR ".join(f"file_sha256 == '{sha}'" for sha in shas))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--work", type=Path, default=None, help="synthesise here and keep it (reused when present)")
    args = parser.parse_args()
    layout = Layout(load_settings())
    settings = platform_settings(layout)
    work = args.work / str(args.rows) if args.work else Path(tempfile.mkdtemp(prefix="santelake-landing-"))
    if not (work / FILES["outpatient_claims"]).exists():
        work.mkdir(parents=True, exist_ok=True)
        synthesize(work, scale=max(args.rows // 10, 1), seed=11)  # about ten claims per person
    own = own_times(settings, work)

    catalog = open_catalog(settings)
    declared = runner.schemas(settings.schemas_dir)
    tables = {t: catalog.load_table(declared[f"snds.{t}"].identifier) for t in TABLES}
    before = {t: table.current_snapshot().snapshot_id for t, table in tables.items()}
    landing = Landing.of(settings)
    shas = [file_sha256(work / FILES[t]) for t in TABLES]
    print(f"{'table':20} {'rows':>12} {'load alone s':>13} {'landed->queryable s':>20} {'scheduler adds s':>17}")
    try:
        for table_name, sha in zip(TABLES, shas, strict=True):
            path = work / FILES[table_name]
            started = time.perf_counter()
            key = landing.land(table_name, path)
            uploaded = time.perf_counter() - started
            snapshot = None
            while snapshot is None:
                time.sleep(1)
                snapshot = published_snapshot(tables[table_name], sha)
                if time.perf_counter() - started > 3600:
                    raise SystemExit(f"{key} not published within an hour: see the ingest DAG in Airflow")
            queryable = time.perf_counter() - started
            rows = int(snapshot.summary.additional_properties["santelake.rows-published"])
            print(f"{table_name:20} {rows:>12,} {own[table_name]:>13.1f} {queryable:>20.1f} "
                  f"{queryable - own[table_name]:>17.1f}   (upload {uploaded:.1f} s)", flush=True)
        count = query.run(layout, dev_token(layout, "dana"), "SELECT count(*) FROM iceberg.snds.outpatient_claims")
        print(f"Trino, as dana: {count[1][0][0]:,} rows in snds.outpatient_claims")
    finally:
        restore(catalog, declared, before, shas)


if __name__ == "__main__":
    main()
