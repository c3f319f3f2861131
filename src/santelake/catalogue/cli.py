"""``santelake catalogue``: build the data catalogue's static site (public or researcher view)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def cmd_catalogue(args: argparse.Namespace) -> int:
    from santelake.catalogue.site import build, catalogued
    from santelake.ingest import runner
    from santelake.locations import policies_dir
    from santelake.policy.loader import load_policies

    policies = load_policies(Path(args.policies) if args.policies else policies_dir())
    schemas = runner.schemas(Path(args.schemas) if args.schemas else None)
    figures = None
    if not args.without_lake:
        from santelake.catalogue.live import coverage
        from santelake.cli import platform_from
        from santelake.lake.catalog import open_catalog

        figures = coverage(open_catalog(platform_from(args)), catalogued(schemas, policies))
    pages = build(Path(args.out), schemas, policies, args.view, figures)
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
    catalogue.set_defaults(func=cmd_catalogue)
