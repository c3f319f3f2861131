"""``santelake catalogue``: build the data catalogue's static site (public or researcher view), or
serve the public view from the local stack, rebuilt from the lake at an interval."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

# How often the served catalogue is rebuilt from the lake: its figures (rows, persons, last load)
# are at most this old.
REFRESH_SECONDS = 300.0


def site_builder(args: argparse.Namespace) -> Callable[[Path], list[Path]]:
    """What writes the site into a folder, with the lake's figures read at each call."""
    from santelake.catalogue.site import build, catalogued
    from santelake.ingest import runner
    from santelake.locations import policies_dir
    from santelake.policy.loader import load_policies

    def write(out: Path) -> list[Path]:
        policies = load_policies(Path(args.policies) if args.policies else policies_dir())
        schemas = runner.schemas(Path(args.schemas) if args.schemas else None)
        figures = None
        if not args.without_lake:
            from santelake.catalogue.live import coverage
            from santelake.cli import platform_from
            from santelake.lake.catalog import open_catalog

            figures = coverage(open_catalog(platform_from(args)), catalogued(schemas, policies))
        return build(out, schemas, policies, args.view, figures)
    return write


def site_fingerprint(args: argparse.Namespace) -> Callable[[], str]:
    """What a build reads, cheaply: the policy and schema files, and each table's current snapshot.

    A build counts every table's persons (a scan of a column); this reads metadata only, so an
    unchanged lake costs the served catalogue no scan.
    """
    import hashlib

    from santelake.catalogue.live import FILES_TABLE, QUARANTINE_TABLE
    from santelake.ingest import runner
    from santelake.locations import policies_dir, schemas_dir

    def mark() -> str:
        digest = hashlib.sha256()
        for folder in (Path(args.policies) if args.policies else policies_dir(),
                       Path(args.schemas) if args.schemas else schemas_dir()):
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
        if not args.without_lake:
            from santelake.cli import platform_from
            from santelake.lake.catalog import open_catalog

            catalog = open_catalog(platform_from(args))
            names = sorted({d.identifier for d in runner.schemas(Path(args.schemas) if args.schemas else None)
                            .values()} | {FILES_TABLE, QUARANTINE_TABLE})
            for name in names:
                snapshot = catalog.load_table(name).current_snapshot() if catalog.table_exists(name) else None
                digest.update(f"{'.'.join(name)}={snapshot.snapshot_id if snapshot else '-'};".encode())
        return digest.hexdigest()
    return mark


def cmd_catalogue(args: argparse.Namespace) -> int:
    from santelake.errors import ConfigError

    if args.serve:
        from santelake.catalogue.serve import Site, serve
        from santelake.cli import layout_from

        if args.view != "public":
            raise ConfigError("santelake catalogue --serve serves the public view only (docs/researcher-guide.md, "
                              "\"The data catalogue\"); build the researcher view with --out")
        layout = layout_from(args)
        serve(Site(Path(args.out), site_builder(args), site_fingerprint(args)), bind=layout.settings.bind_host,
              port=layout.settings.catalogue_port, cert=layout.tls.server_cert, key=layout.tls.server_key,
              refresh_seconds=args.refresh)
        return 0
    pages = site_builder(args)(Path(args.out))
    print(f"{len(pages)} pages ({args.view} view) in {args.out}; open {pages[0]}")
    return 0


def register(subparsers: Any) -> None:
    catalogue = subparsers.add_parser(
        "catalogue", help="build the data catalogue: a static site of the tables (public or researcher view)")
    catalogue.add_argument("--out", required=True, help="folder to write the site into")
    catalogue.add_argument("--view", choices=("public", "researcher"), default="public",
                           help="public: no personal data, for anyone; researcher: plus grants and example queries")
    catalogue.add_argument("--without-lake", action="store_true",
                           help="leave out the lake's figures (coverage, freshness): no connection needed")
    catalogue.add_argument("--policies", help="policies folder (default: SANTELAKE_POLICIES_DIR, else policies/)")
    catalogue.add_argument("--schemas", help="schemas folder (default: SANTELAKE_SCHEMAS_DIR, else iceberg_schemas/)")
    catalogue.add_argument("--serve", action="store_true",
                           help="serve the public view on the local stack's catalogue port (HTTPS), rebuilding "
                                "it under --out every --refresh seconds (what `santelake up` runs)")
    catalogue.add_argument("--refresh", type=float, default=REFRESH_SECONDS,
                           help=f"with --serve: seconds between rebuilds (default {REFRESH_SECONDS:.0f})")
    catalogue.set_defaults(func=cmd_catalogue)
