"""``santelake rekey --new-key-file PATH``: re-key every pseudonym of the lake (see ``rekey``)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from santelake.errors import ConfigError


def cmd_rekey(args: argparse.Namespace) -> int:
    from pathlib import Path

    from santelake.audit import client
    from santelake.cli import platform_from
    from santelake.ingest import runner
    from santelake.lake.catalog import open_catalog
    from santelake.pseudonymise.key import load_key, load_key_chain, write_key_chain
    from santelake.pseudonymise.rekey import forget_history, rekey

    settings = platform_from(args)
    key_file = settings.pseudonym_key_file
    if not os.access(key_file.parent, os.W_OK):
        raise ConfigError(f"{key_file.parent} is not writable: the new key chain is saved as {key_file}")
    new_key = load_key(Path(args.new_key_file))
    chain = load_key_chain(path=key_file)
    catalog = open_catalog(settings)
    declared = runner.schemas(settings.schemas_dir)
    report = rekey(catalog, declared, chain, new_key, lambda keys: write_key_chain(key_file, keys),
                   after_table=lambda name: print(f"{name}: re-keyed", flush=True))
    for table in report.tables:
        detail = f"{table.rows:,} rows, columns {', '.join(table.columns)}" if table.columns else ""
        print(f"{table.table:32} {table.status:16} {detail}")
    print(f"key chain {report.old_key_id} -> {report.new_key_id}, saved in {key_file}")
    forgotten = forget_history(catalog, declared, report.new_key_id) if args.expire_snapshots else []
    for item in forgotten:
        print(f"{item.table:32} {item.snapshots} old snapshot(s) expired, {item.files} file(s) deleted")
    if not args.expire_snapshots:
        print("Old snapshots still hold the old pseudonyms: run again with --expire-snapshots to drop them.")
    # Recorded once done (a run that stopped is resumed, and the resumed run records it).
    client.record("rekey", report.new_key_id, report.summary(forgotten))
    return 0


def register(subparsers: Any) -> None:
    rekey = subparsers.add_parser(
        "rekey", help="re-key every pseudonym of the lake with a new key (resumable; a second run is a no-op)")
    rekey.add_argument("--new-key-file", required=True,
                       help="file holding the new key (64 hex characters, or at least 32 raw bytes)")
    rekey.add_argument("--expire-snapshots", action="store_true",
                       help="then expire every older snapshot and delete the files only they read")
    rekey.set_defaults(func=cmd_rekey)
