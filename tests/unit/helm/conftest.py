"""Renders the chart with the pinned helm (built once into the santelake cache, never skipped)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from santelake.render.helm import CHART_DIR, helm_binary

KUBE_VERSION = "1.33.0"
SCENARIOS = ("minimal", "production", "seaweedfs", "workers", "tls", "helmtest", "cluster")


def scenario_file(name: str) -> Path:
    return CHART_DIR / "ci" / f"{name}-values.yaml"


@pytest.fixture(scope="session")
def helm() -> Path:
    return helm_binary()


class Rendered:
    def __init__(self, documents: list[dict[str, Any]]) -> None:
        self.documents = documents

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.documents if d["kind"] == kind]

    def named(self, kind: str, suffix: str) -> dict[str, Any]:
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"].endswith(suffix)]
        assert len(found) == 1, f"expected one {kind} named *{suffix}, found {[d['metadata']['name'] for d in found]}"
        return found[0]

    def pod_specs(self) -> list[tuple[str, dict[str, Any]]]:
        return [(name, spec) for name, _, spec in self.pods()]

    def pods(self) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
        """(name, pod labels, pod spec) of every workload and pod."""
        found = []
        for d in self.documents:
            if d["kind"] in ("Deployment", "StatefulSet", "Job"):
                template = d["spec"]["template"]
                found.append((d["metadata"]["name"], template["metadata"]["labels"], template["spec"]))
            elif d["kind"] == "CronJob":
                template = d["spec"]["jobTemplate"]["spec"]["template"]
                found.append((d["metadata"]["name"], template["metadata"]["labels"], template["spec"]))
            elif d["kind"] == "Pod":
                found.append((d["metadata"]["name"], d["metadata"]["labels"], d["spec"]))
        return found


def run_helm(helm: Path, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, check=False)


def template_args(values: Sequence[Path], sets: Sequence[str] = ()) -> list[str]:
    args = ["template", "santelake", str(CHART_DIR), "--namespace", "lake", "--kube-version", KUBE_VERSION]
    for v in values:
        args += ["-f", str(v)]
    for s in sets:
        args += ["--set", s]
    return args


_cache: dict[str, Rendered] = {}


@pytest.fixture(scope="session")
def render(helm: Path) -> Callable[[str], Rendered]:
    """The chart rendered with a named scenario's values, once per session."""

    def rendered(name: str) -> Rendered:
        if name not in _cache:
            result = run_helm(helm, template_args([scenario_file(name)]))
            assert result.returncode == 0, f"helm template ({name}) failed:\n{result.stderr}"
            _cache[name] = Rendered([d for d in yaml.safe_load_all(result.stdout) if d])
        return _cache[name]

    return rendered
