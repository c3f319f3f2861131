"""The ``santelake`` command: thin; each subcommand calls the package."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from santelake.config import load_settings
from santelake.errors import SantelakeError
from santelake.runtime.layout import Layout
from santelake.settings import PlatformSettings, env_name

# Set in every pod of the chart, never by the local runtime: the environment holds every setting.
IN_A_POD = env_name("catalog_host")


def layout_from(args: argparse.Namespace) -> Layout:
    """The installation named by the global options; for command modules too."""
    return layout_of(args)


def layout_of(args: argparse.Namespace) -> Layout:
    """The local installation the command's ``--state-dir`` names."""
    return Layout(load_settings({"state_dir": args.state_dir}))


def platform_from(args: argparse.Namespace) -> PlatformSettings:
    """The platform settings: all from the environment in a pod (the chart sets ``SANTELAKE_CATALOG_HOST``
    and the rest), else the local installation's, from its state folder; then the local receiver
    also records what the command does in the audit trail (unless the environment names one)."""
    if IN_A_POD in os.environ:
        return PlatformSettings.from_environment()
    from santelake.audit.client import URL_ENV
    from santelake.runtime.platform import platform_settings
    from santelake.runtime.services.audit import client_environment

    layout = layout_of(args)
    if URL_ENV not in os.environ:
        os.environ.update(client_environment(layout))
    return platform_settings(layout)


def cmd_up(args: argparse.Namespace) -> int:
    from santelake.runtime import stack

    layout = layout_of(args)
    stack.up(layout, only=tuple(args.only or ()))
    if args.only:
        return 0
    from santelake import demo

    demo.load(layout)
    from santelake.runtime.services.catalogue import CatalogueServer

    CatalogueServer(layout).refresh()  # the catalogue's figures, with the demo data
    print(demo.answer(layout))
    _print_status(layout)
    print(f"\nLogs: {layout.logs}   Dev users' passwords: {layout.users_file}")
    return 0


def _print_status(layout: Layout) -> bool:
    from santelake.runtime import stack

    all_ok = True
    print(f"{'service':10} {'health':8} {'pid':>8}  url / detail")
    for st in stack.status(layout):
        pids = ",".join(str(p) if p else "-" for p in st.pids) or "-"
        print(f"{st.name:10} {'healthy' if st.healthy else 'DOWN':8} {pids:>8}  {st.url}  {st.detail}")
        all_ok &= st.healthy
    return all_ok


def cmd_status(args: argparse.Namespace) -> int:
    return 0 if _print_status(layout_of(args)) else 1


def cmd_down(args: argparse.Namespace) -> int:
    from santelake.runtime import stack

    stack.down(layout_of(args))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from santelake.access.token import dev_token, device_login

    layout = layout_of(args)
    token = device_login(layout, show=lambda m: print(m, file=sys.stderr)) if args.device \
        else dev_token(layout, args.user)
    print(token)
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from trino.exceptions import TrinoQueryError

    from santelake.access import query
    from santelake.access.token import dev_token

    layout = layout_of(args)
    try:
        names, rows = query.run(layout, dev_token(layout, args.user), args.sql)
    except TrinoQueryError as exc:
        # Trino's own words, on one line: what a researcher needs to fix the query, no traceback.
        message = " ".join(str(exc.message or "").split())
        raise SantelakeError(f"Trino refused the query ({exc.error_name}): {message}") from None
    print(query.format_table(names, rows))
    return 0


# Modules that add subcommands: each has `register(subparsers)`, and sets `func` on its parsers.
COMMAND_MODULES: tuple[str, ...] = ("santelake.render.helm", "santelake.policy.cli", "santelake.render.bootstrap",
                                     "santelake.render.smoketest", "santelake.pseudonymise.cli",
                                     "santelake.ingest.cli", "santelake.deploy.cli", "santelake.audit.cli",
                                     "santelake.erasure.cli", "santelake.catalogue.cli")


def cmd_synth(args: argparse.Namespace) -> int:
    from pathlib import Path

    from santelake.synth import synthesize

    report = synthesize(Path(args.out), scale=args.scale, seed=args.seed)
    for item in report.files:
        print(f"{item.table:24} {item.rows:>12,} rows  {item.path}")
    print(f"{report.rows:,} rows in {report.seconds:.1f}s")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="santelake", description=__doc__)
    top.add_argument("--state-dir", help="state and logs directory (default .santelake, env SANTELAKE_STATE_DIR)")
    sub = top.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the local platform, load the demo data and answer a query")
    up.add_argument("--only", nargs="*", help="start only these services (no demo)")
    up.set_defaults(func=cmd_up)
    sub.add_parser("status", help="each service's health, pid and URL").set_defaults(func=cmd_status)
    sub.add_parser("down", help="stop every service, keeping all data").set_defaults(func=cmd_down)

    token = sub.add_parser("token", help="print an access token (for trino --access-token)")
    who = token.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a local dev user (password grant, dev only)")
    who.add_argument("--device", action="store_true", help="log in with the device authorization grant")
    token.set_defaults(func=cmd_token)

    q = sub.add_parser("query", help="run SQL on Trino as a user and print the result")
    q.add_argument("sql")
    q.add_argument("--user", required=True)
    q.set_defaults(func=cmd_query)
    synth = sub.add_parser("synth", help="write synthetic SNDS-like source extracts (deterministic per seed)")
    synth.add_argument("--scale", type=int, required=True, help="number of persons")
    synth.add_argument("--seed", type=int, default=1)
    synth.add_argument("--out", required=True, help="output directory")
    synth.set_defaults(func=cmd_synth)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SantelakeError as exc:
        print(f"santelake: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
