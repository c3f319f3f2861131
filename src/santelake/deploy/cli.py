"""``santelake secrets``: create the Secrets a chart install names and lacks, with generated values."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from santelake.errors import PrerequisiteError, ServiceError

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


def cmd_secrets(args: argparse.Namespace) -> int:
    from santelake.deploy.secrets import create_missing
    from santelake.render.helm import CHART_DIR, load_values

    kubectl = args.kubectl or shutil.which("kubectl")
    if not kubectl:
        raise PrerequisiteError("kubectl is needed (or pass --kubectl PATH)")
    files = [Path(f) for f in args.values or ()]
    values = load_values(CHART_DIR, files)
    create_missing(values, args.namespace, services(files, args.release, args.namespace), kubectl)
    return 0


def register(subparsers: Any) -> None:
    command = subparsers.add_parser(
        "secrets", help="create the Secrets the chart's values name and the namespace lacks (generated values, "
                        "never printed; existing ones are left alone)")
    command.add_argument("--namespace", required=True)
    command.add_argument("--release", default="santelake", help="the Helm release name (default santelake)")
    command.add_argument("-f", "--values", action="append", metavar="FILE", help="values files, as given to helm")
    command.add_argument("--kubectl", help="the kubectl to use (default: the one on PATH)")
    command.set_defaults(func=cmd_secrets)
