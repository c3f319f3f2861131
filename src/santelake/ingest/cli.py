"""``santelake land SOURCE FILE...`` and ``santelake landing status|load``: the landing bucket, by hand."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def cmd_land(args: argparse.Namespace) -> int:
    from santelake.cli import platform_from
    from santelake.errors import ConfigError
    from santelake.ingest import runner
    from santelake.ingest.landing import Landing

    settings = platform_from(args)
    known = [s.name for s in runner.sources(runner.schemas(settings.schemas_dir))]
    if args.source not in known:
        raise ConfigError(f"no source named {args.source!r}; sources: {', '.join(known)}")
    landing = Landing.of(settings)
    for file in args.files:
        print(landing.uri(landing.land(args.source, Path(file))))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from santelake.cli import platform_from
    from santelake.ingest.landing import INCOMING, LOADED, REJECTED, Landing

    landing = Landing.of(platform_from(args))
    states = {INCOMING: "waiting", LOADED: "loaded", REJECTED: "rejected"}
    rows = [(states[o.state], o.key, f"{o.size:,}", f"{o.modified:%Y-%m-%d %H:%M:%S}", o.reason)
            for state in states for o in landing.objects(state)]
    print(f"{'state':9} {'object':60} {'bytes':>14}  {'since (UTC)':19}  reason")
    for state, key, size, since, reason in rows:
        print(f"{state:9} {key:60} {size:>14}  {since:19}  {reason}")
    print(f"({len(rows)} object(s) in s3://{landing.bucket}; loaded extracts are deleted once loaded unless "
          "SANTELAKE_LANDING_KEEP_LOADED_DAYS is set: `santelake landing loads` lists the loads)")
    return 0


def cmd_loads(args: argparse.Namespace) -> int:
    from santelake.cli import platform_from
    from santelake.ingest import runner
    from santelake.lake.catalog import open_catalog

    settings = platform_from(args)
    catalog = open_catalog(settings)
    identifier = runner.schemas(settings.schemas_dir)["ops.ingested_files"].identifier
    if not catalog.table_exists(identifier):
        print("no load recorded yet")
        return 0
    records = catalog.load_table(identifier).scan().to_arrow().sort_by([("loaded_at", "descending")])
    print(f"{'loaded at (UTC)':19}  {'status':9} {'table':30} {'file':32} {'rows':>12} {'quarantined':>12} "
          f"{'new':>12} {'updated':>10} {'unchanged':>10} {'refused':>10}")
    for row in records.slice(0, args.last).to_pylist():
        # The identity counts are null for loads recorded before keys were checked across loads.
        counts = " ".join(f"{'-' if row.get(name) is None else format(row[name], ','):>{width}}"
                          for name, width in (("new_count", 12), ("updated_count", 10), ("unchanged_count", 10),
                                              ("refused_count", 10)))
        print(f"{row['loaded_at']:%Y-%m-%d %H:%M:%S}  {row['status']:9} {row['target_table']:30} "
              f"{row['file_name']:32} {row['row_count']:>12,} {row['quarantined_count']:>12,} {counts}")
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from santelake.cli import platform_from
    from santelake.ingest.landing import load_waiting

    outcomes = load_waiting(platform_from(args), report=lambda o: print(f"{o.status:18} {o.message}", flush=True))
    if not outcomes:
        print("nothing waiting")
    return 1 if any(o.status == "rejected" for o in outcomes) else 0


def register(subparsers: Any) -> None:
    land = subparsers.add_parser("land", help="upload source extracts into the landing bucket (incoming/<source>/)")
    land.add_argument("source", help="the source (table) the files are extracts of")
    land.add_argument("files", nargs="+", help="extract files (CSV or Parquet, as the source's schema declares)")
    land.set_defaults(func=cmd_land)

    landing = subparsers.add_parser("landing", help="the landing bucket: each extract's state, and loads")
    sub = landing.add_subparsers(dest="landing_command", required=True)
    sub.add_parser("status", help="every object: waiting, loaded (if kept) or rejected, with the reason"
                   ).set_defaults(func=cmd_status)
    loads = sub.add_parser("loads", help="the latest loads recorded in ops.ingested_files")
    loads.add_argument("--last", type=int, default=20, help="how many (default 20)")
    loads.set_defaults(func=cmd_loads)
    sub.add_parser("load", help="load what waits now, as the ingestion DAG does (for operators and tests)"
                   ).set_defaults(func=cmd_load)
