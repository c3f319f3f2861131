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


CatalogOf = Callable[[], Any]


def site_builder(view: str, policies: Path | None, schemas: Path | None,
                 catalog_of: CatalogOf | None) -> Callable[[Path], list[Path]]:
    """What writes the site into a folder, with the lake's figures read at each call (none without ``catalog_of``)."""
    from santelake.catalogue.site import build, catalogued
    from santelake.ingest import runner
    from santelake.locations import policies_dir
    from santelake.policy.loader import load_policies

    def write(out: Path) -> list[Path]:
        loaded = load_policies(policies or policies_dir())
        declared = runner.schemas(schemas)
        figures = None
        if catalog_of is not None:
            from santelake.catalogue.live import coverage

            figures = coverage(catalog_of(), catalogued(declared, loaded))
        return build(out, declared, loaded, view, figures)
    return write


def site_fingerprint(policies: Path | None, schemas: Path | None, catalog_of: CatalogOf | None) -> Callable[[], str]:
    """What a build reads, cheaply: the policy and schema files, and each table's current snapshot.

    A build counts every table's persons (a scan of a column); this reads metadata only, so an
    unchanged lake costs the catalogue no scan.
    """
    import hashlib

    from santelake.catalogue.live import FILES_TABLE, QUARANTINE_TABLE
    from santelake.ingest import runner
    from santelake.locations import policies_dir, schemas_dir

    def mark() -> str:
        digest = hashlib.sha256()
        for folder in (policies or policies_dir(), schemas or schemas_dir()):
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
        if catalog_of is not None:
            catalog = catalog_of()
            names = sorted({d.identifier for d in runner.schemas(schemas).values()} | {FILES_TABLE, QUARANTINE_TABLE})
            for name in names:
                snapshot = catalog.load_table(name).current_snapshot() if catalog.table_exists(name) else None
                digest.update(f"{'.'.join(name)}={snapshot.snapshot_id if snapshot else '-'};".encode())
        return digest.hexdigest()
    return mark


def _sources(args: argparse.Namespace) -> tuple[Path | None, Path | None, CatalogOf | None]:
    catalog_of = None
    if not args.without_lake:
        def catalog_of() -> Any:
            from santelake.cli import platform_from
            from santelake.lake.catalog import open_catalog

            return open_catalog(platform_from(args))
    return (Path(args.policies) if args.policies else None, Path(args.schemas) if args.schemas else None,
            catalog_of)


def cmd_catalogue(args: argparse.Namespace) -> int:
    from santelake.errors import ConfigError

    if args.serve_folder:
        from santelake.catalogue.serve import serve_folder

        missing = [flag for flag, value in (("--cert", args.cert), ("--key", args.key)) if not value]
        if missing:
            raise ConfigError(f"santelake catalogue --serve-folder needs {' and '.join(missing)}: it serves HTTPS only")
        serve_folder(Path(args.serve_folder), bind=args.bind, port=args.port, cert=Path(args.cert),
                     key=Path(args.key))
        return 0
    if args.out is None:
        raise ConfigError("santelake catalogue needs --out (a folder to build into) or --serve-folder")
    policies, schemas, catalog_of = _sources(args)
    if args.serve:
        from santelake.catalogue.serve import Site, serve
        from santelake.cli import layout_from

        if args.view != "public":
            raise ConfigError("santelake catalogue --serve serves the public view only (docs/researcher-guide.md, "
                              "\"The data catalogue\"); build the researcher view with --out")
        layout = layout_from(args)
        serve(Site(Path(args.out), site_builder(args.view, policies, schemas, catalog_of),
                   site_fingerprint(policies, schemas, catalog_of)),
              bind=layout.settings.bind_host, port=layout.settings.catalogue_port, cert=layout.tls.server_cert,
              key=layout.tls.server_key, refresh_seconds=args.refresh)
        return 0
    pages = site_builder(args.view, policies, schemas, catalog_of)(Path(args.out))
    print(f"{len(pages)} pages ({args.view} view) in {args.out}; open {pages[0]}")
    return 0


def register(subparsers: Any) -> None:
    catalogue = subparsers.add_parser(
        "catalogue", help="build the data catalogue: a static site of the tables (public or researcher view)")
    catalogue.add_argument("--out", help="folder to write the site into")
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
    catalogue.add_argument("--serve-folder", metavar="DIR",
                           help="serve DIR as it is on HTTPS, read-only (the chart's catalogue pod: the scheduler's "
                                "`catalogue` DAG publishes the site into the ConfigMap mounted there)")
    catalogue.add_argument("--bind", default="127.0.0.1",
                           help="with --serve-folder: the address to listen on (the chart gives 0.0.0.0)")
    catalogue.add_argument("--port", type=int, default=8443, help="with --serve-folder: the port (default 8443)")
    catalogue.add_argument("--cert", help="with --serve-folder: the server's certificate (PEM)")
    catalogue.add_argument("--key", help="with --serve-folder: the server's private key (PEM)")
    catalogue.set_defaults(func=cmd_catalogue)
