"""``santelake erase``: register persons who objected and take them out of the lake, with a proof."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from santelake.errors import SantelakeError

if TYPE_CHECKING:
    from santelake.erasure.erase import Erasure
    from santelake.settings import PlatformSettings


def erasure_of(settings: PlatformSettings, log: Callable[[str], None] = print) -> Erasure:
    """The installation's erasure: its catalog, schemas, key chain and the ingest account's S3 client."""
    from santelake.erasure.erase import Erasure
    from santelake.ingest import runner
    from santelake.lake.catalog import open_catalog
    from santelake.lake.storage import ingest_client

    return Erasure(open_catalog(settings), runner.schemas(settings.schemas_dir), runner.pseudonymiser(settings),
                   ingest_client(settings), settings.warehouse_bucket, settings.landing_bucket, log=log,
                   key_cache=runner.key_cache(settings))


def cmd_erase(args: argparse.Namespace) -> int:
    from santelake.audit import client
    from santelake.cli import platform_from
    from santelake.erasure.erase import read_persons

    settings = platform_from(args)
    erasure = erasure_of(settings, log=lambda line: print(line, flush=True))
    persons = None
    if args.file is not None:
        origin = "standard input" if args.file == "-" else args.file
        try:
            handle = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise SantelakeError(f"{args.file}: cannot read the persons to erase ({exc.strerror})") from exc
        with handle:
            persons = read_persons(handle, origin, erasure.pseudonymiser, as_pseudonyms=args.pseudonyms)
    report = erasure.run(persons)
    summary = report.summary()
    client.record("erasure", report.erasure_id, summary)
    for table in report.tables:
        print(f"{table.table:32} {table.rows_deleted:>10,} rows deleted, {table.files_rewritten} file(s) rewritten "
              f"({table.files_with_deletes} with delete files)")
    for item in report.history:
        print(f"{item.table:32} {item.snapshots_expired} snapshot(s) expired, {item.files_deleted} file(s) deleted")
    print(f"landed extracts deleted: {len(report.landed_deleted)}; older object versions deleted: "
          f"{report.versions_deleted}")
    proof = report.proof
    print(f"proof: {proof.objects:,} objects ({proof.bytes / 1e6:,.1f} MB) of s3://{settings.warehouse_bucket} and "
          f"s3://{settings.landing_bucket} read; {len(proof.hits)} name an erased person")
    if args.json:
        print(json.dumps(summary, indent=2))
    if report.landed_waiting:
        print(f"{len(report.landed_waiting)} extract(s) waiting to be loaded hold an erased person; their load drops "
              "them and deletes the extract; run `santelake erase` again after it", file=sys.stderr)
    if not proof.clean:
        print("NOT ERASED: these objects still name an erased person:\n  "
              + "\n  ".join(f"{h.location}: {h.found}" for h in proof.hits), file=sys.stderr)
    if not report.done:
        return 1
    registered, erased = erasure.register.count()
    print(f"{report.erasure_id}: done; the opposition register holds {registered} person(s), {erased} erased")
    return 0


def register(subparsers: Any) -> None:
    erase = subparsers.add_parser(
        "erase", help="register persons who objected and erase them from the lake, with a proof (resumable)",
        description="Reads one person a line (NIRs, or pseudonyms with --pseudonyms), adds them to the opposition "
                    "register, then erases every registered person from every table, snapshot, landed extract and "
                    "object version, and reads every object to prove it. Without FILE, erases again every "
                    "registered person (after a crash, or a restore).")
    erase.add_argument("file", nargs="?", help="file of NIRs (or pseudonyms), one a line; - for standard input")
    erase.add_argument("--pseudonyms", action="store_true", help="the file holds pseudonyms, not NIRs")
    erase.add_argument("--json", action="store_true", help="also print the report as JSON (no person in it)")
    erase.set_defaults(func=cmd_erase)
