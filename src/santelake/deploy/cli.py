"""``santelake secrets``: create the Secrets a chart install names and lacks, with generated values."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from santelake.errors import ConfigError, PrerequisiteError, ServiceError

# The Kubernetes version names are rendered for: the one infra/cluster runs and the tests validate.
KUBE_VERSION = "1.33.0"


def services(values_files: list[Path], release: str, namespace: str) -> list[str]:
    """The Service names the chart makes with these values (the certificate must name each)."""
    from santelake.render.helm import CHART_DIR, helm_binary

    # helm template assumes Kubernetes 1.20 without a cluster; the chart needs 1.29 or later.
    args = [str(helm_binary()), "template", release, str(CHART_DIR), "--namespace", namespace,
            "--kube-version", KUBE_VERSION]
    for path in values_files:
        args += ["-f", str(path)]
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        raise ServiceError(f"helm template failed: {result.stderr.strip()}")
    return sorted(d["metadata"]["name"] for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "Service")


def _kubectl(args: argparse.Namespace) -> str:
    kubectl = args.kubectl or shutil.which("kubectl")
    if not kubectl:
        raise PrerequisiteError("kubectl is needed (or pass --kubectl PATH)")
    return str(kubectl)


def _values(args: argparse.Namespace) -> dict[str, Any]:
    from santelake.render.helm import CHART_DIR, load_values

    return load_values(CHART_DIR, [Path(f) for f in args.values or ()])


def cmd_secrets(args: argparse.Namespace) -> int:
    from santelake.deploy.secrets import create_missing

    kubectl = _kubectl(args)
    files = [Path(f) for f in args.values or ()]
    create_missing(_values(args), args.namespace, services(files, args.release, args.namespace), kubectl)
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from santelake.deploy.backup import backup, release_of

    if args.namespace is None:
        from santelake.cli import layout_of
        from santelake.runtime.backup import back_up

        manifest = back_up(layout_of(args), Path(args.to))
    else:
        manifest = backup(release_of(args.namespace, args.release, _kubectl(args), _values(args)), Path(args.to))
    objects = sum(len(o) for o in manifest["buckets"].values())
    print(f"backed up {len(manifest['databases'])} databases and {objects} objects into {args.to}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from santelake.deploy.backup import release_of, restore

    if args.namespace is None:
        from santelake.cli import layout_of
        from santelake.runtime.backup import restore_fresh

        restore_fresh(layout_of(args), Path(getattr(args, "from")))
        return 0
    if not args.replace:
        raise ConfigError("a restore replaces the release's lake, landed extracts and databases: "
                          "pass --replace to confirm")
    restore(release_of(args.namespace, args.release, _kubectl(args), _values(args)), Path(getattr(args, "from")))
    return 0


def _command(subparsers: Any, name: str, summary: str, func: Any, *, local: bool = False) -> Any:
    """A subcommand about one Helm release: its namespace, name, values files and kubectl (without
    ``--namespace``, where ``local``: about the local stack)."""
    command = subparsers.add_parser(name, help=summary)
    command.add_argument("--namespace", required=not local,
                         help="the release's namespace" + ("; without it, the local stack" if local else ""))
    command.add_argument("--release", default="santelake", help="the Helm release name (default santelake)")
    command.add_argument("-f", "--values", action="append", metavar="FILE", help="values files, as given to helm")
    command.add_argument("--kubectl", help="the kubectl to use (default: the one on PATH)")
    command.set_defaults(func=func)
    return command


def register(subparsers: Any) -> None:
    _command(subparsers, "secrets", "create the Secrets the chart's values name and the namespace lacks (generated "
                                    "values, never printed; existing ones are left alone)", cmd_secrets)
    backup = _command(subparsers, "backup", "back up a release's databases and buckets (bundled PostgreSQL and "
                                            "MinIO), or the local stack's with its secrets sealed, into a new "
                                            "directory, ingestion paused meanwhile (docs/operations.md)", cmd_backup,
                      local=True)
    backup.add_argument("--to", required=True, metavar="DIR", help="a new or empty directory")
    restore = _command(subparsers, "restore", "restore a backup into a release (a fresh one): checked first, then "
                                              "buckets and databases replaced with Keycloak, Trino and Airflow "
                                              "stopped; or a local backup into a fresh state folder", cmd_restore,
                       local=True)
    restore.add_argument("--from", required=True, metavar="DIR", help="a directory `santelake backup` wrote")
    restore.add_argument("--replace", action="store_true", help="confirm that the release's current data is replaced")
