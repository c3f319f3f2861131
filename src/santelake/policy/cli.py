"""``santelake policy lint|compile|apply|explain|diff|report``: thin, each calls the package."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

from santelake.policy.errors import Severity


def _day(args: argparse.Namespace) -> dt.date:
    return dt.date.fromisoformat(args.date) if args.date else dt.date.today()


def _sources(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policies", help="policy directory (default: policies/, env SANTELAKE_POLICIES_DIR)")
    parser.add_argument("--schemas", help="table schemas (default: iceberg_schemas/, env SANTELAKE_SCHEMAS_DIR)")
    parser.add_argument("--date", help="judge projects as on this day, YYYY-MM-DD (default: today)")


def cmd_lint(args: argparse.Namespace) -> int:
    from santelake.locations import policies_dir, schemas_dir
    from santelake.policy.lint import lint_directory

    _, faults = lint_directory(policies_dir(args.policies), schemas_dir(args.schemas), _day(args))
    for fault in faults:
        print(fault)
    errors = sum(f.severity is Severity.ERROR for f in faults)
    print(f"{errors} error(s), {len(faults) - errors} warning(s)", file=sys.stderr)
    return 1 if errors else 0


def _build(args: argparse.Namespace) -> Any:
    from santelake.policy.build import build

    result = build(args.policies and Path(args.policies), args.schemas and Path(args.schemas), _day(args))
    for fault in result.faults:
        print(fault, file=sys.stderr)
    return result


def cmd_compile(args: argparse.Namespace) -> int:
    from santelake.files import write_atomically

    compiled = _build(args).compiled
    out = Path(args.out)
    write_atomically(out / "rules.json", compiled.rules_json)
    write_atomically(out / "groups.txt", compiled.group_file)
    keycloak = {"groups": list(compiled.groups), "members": {g: list(u) for g, u in compiled.members.items()}}
    write_atomically(out / "keycloak-groups.json", json.dumps(keycloak, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out}/rules.json, groups.txt, keycloak-groups.json")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from santelake.access.enforce import apply
    from santelake.cli import platform_from

    compiled = _build(args).compiled
    started = time.monotonic()
    changes = apply(platform_from(args), compiled, keycloak=not args.no_keycloak)
    for change in changes or ["nothing to change"]:
        print(change)
    print(f"applied in {time.monotonic() - started:.1f}s; Trino reloads rules and groups within 5s")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from santelake.policy.explain import column_readers, user_access

    build = _build(args)
    schemas = _schemas(args)
    day = _day(args)
    if args.column:
        table, _, column = args.column.rpartition(".")
        for user, how, via in column_readers(build.policies, schemas, day, table, column) or [("nobody", "", "")]:
            print(f"{user}: {how} via {via}" if via else user)
        return 0
    if not args.user:
        print("give --user U or --column namespace.table.column", file=sys.stderr)
        return 2
    found = [a for a in user_access(build.policies, schemas, day, args.user)
             if not args.table or a.table == args.table]
    if not found:
        print(f"{args.user} can read nothing" + (f" in {args.table}" if args.table else ""))
    for access in found:
        print(access.summary())
        if access.hidden:
            print(f"    hidden: {', '.join(access.hidden)}")
    return 0


def _schemas(args: argparse.Namespace) -> dict[str, Any]:
    from santelake.locations import schemas_dir
    from santelake.schema import load_schemas

    return {t.full_name: t for t in load_schemas(schemas_dir(args.schemas))}


def cmd_diff(args: argparse.Namespace) -> int:
    from santelake.locations import POLICIES_DIR, SCHEMAS_DIR
    from santelake.policy.diff import diff_revisions

    lines = diff_revisions(Path(args.repo), args.rev1, args.rev2, POLICIES_DIR, SCHEMAS_DIR, _day(args))
    print("\n".join(lines) if lines else "no access changes")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from santelake.policy.report import report

    print(report(_build(args).policies, _schemas(args), _day(args)), end="")
    return 0


def register(subparsers: Any) -> None:
    policy = subparsers.add_parser("policy", help="lint, compile, apply and explain access policies")
    sub = policy.add_subparsers(dest="policy_command", required=True)
    lint = sub.add_parser("lint", help="check policies/ against the schemas and platform rules")
    _sources(lint)
    lint.set_defaults(func=cmd_lint)
    comp = sub.add_parser("compile", help="write Trino rules, Trino groups and Keycloak groups")
    _sources(comp)
    comp.add_argument("--out", required=True, help="directory for rules.json, groups.txt, keycloak-groups.json")
    comp.set_defaults(func=cmd_compile)
    app = sub.add_parser("apply", help="put the compiled policies on the running stack, no restart")
    _sources(app)
    app.add_argument("--no-keycloak", action="store_true", help="write Trino's files only")
    app.set_defaults(func=cmd_apply)
    exp = sub.add_parser("explain", help="what a user can see, by which rule, until when")
    _sources(exp)
    exp.add_argument("--user")
    exp.add_argument("--table", help="namespace.table")
    exp.add_argument("--column", help="namespace.table.column: who can see it")
    exp.set_defaults(func=cmd_explain)
    dif = sub.add_parser("diff", help="whose access changes between two git revisions")
    dif.add_argument("rev1")
    dif.add_argument("rev2")
    dif.add_argument("--repo", default=".", help="the git repository (default: .)")
    dif.add_argument("--date", help="judge projects as on this day (default: today)")
    dif.set_defaults(func=cmd_diff)
    rep = sub.add_parser("report", help="projects, members, datasets and end dates, as Markdown")
    _sources(rep)
    rep.set_defaults(func=cmd_report)
