"""The chart on a real single-node Kubernetes (infra/cluster), with images built on premise
(infra/images): brought up, built, pushed and installed once per session, through the same
scripts an operator runs. Marked ``cluster``; every step prints its time."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from santelake.config import load_settings
from santelake.render.helm import CHART_DIR, helm_binary

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "santelake-e2e"
RELEASE = "santelake"
REGISTRY = "127.0.0.1:5000"
VALUES = CHART_DIR / "ci" / "cluster-values.yaml"
CLUSTER_DIR = Path(os.environ.get("SANTELAKE_CLUSTER_DIR", "/var/lib/santelake-cluster"))
KUBECONFIG = CLUSTER_DIR / "kubeconfig" / "admin.conf"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)


def _timed(what: str, command: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    print(f"[cluster] {what}: {time.monotonic() - started:.0f} s (exit {result.returncode})", flush=True)
    assert result.returncode == 0, f"{what} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@dataclass(frozen=True)
class Cluster:
    kubectl: str
    helm: str
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self.kubectl, "-n", NAMESPACE, *args], capture_output=True, text=True,
                                env=self.env, timeout=timeout, check=False)
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stderr[-2000:]}"
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def secret(self, name: str, key: str) -> str:
        data = self.json("get", "secret", name)["data"]
        return base64.b64decode(data[key]).decode()

    @contextlib.contextmanager
    def forward(self, target: str, port: int) -> Iterator[int]:
        """``kubectl port-forward`` of ``target``'s ``port`` to a free local port, for the block."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            local = probe.getsockname()[1]
        process = subprocess.Popen([self.kubectl, "-n", NAMESPACE, "port-forward", target, f"{local}:{port}"],
                                   env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", local), timeout=1):
                    break
                assert process.poll() is None and time.monotonic() < deadline, f"port-forward {target} failed"
                time.sleep(0.3)
            yield local
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    _timed("cluster up", ["bash", str(REPO / "infra" / "cluster" / "up")], timeout=3600)
    kubectl = str(load_settings().cache_dir / "k8s" / "v1.33.13" / "bin" / "kubectl")
    env = dict(os.environ, KUBECONFIG=str(KUBECONFIG))
    return Cluster(kubectl, str(helm_binary()), env)


@pytest.fixture(scope="session")
def images(cluster: Cluster) -> None:
    _timed("images built", ["bash", str(REPO / "infra" / "images" / "build")], timeout=3600)
    _timed("images pushed", ["bash", str(REPO / "infra" / "images" / "push"), REGISTRY], timeout=1800)


@pytest.fixture(scope="session")
def release(cluster: Cluster, images: None) -> Cluster:
    """The chart installed in its namespace, `helm install --wait` returned."""
    if cluster.run("get", "namespace", NAMESPACE, check=False).returncode != 0:
        subprocess.run([cluster.kubectl, "create", "namespace", NAMESPACE], env=cluster.env, check=True,
                       capture_output=True)
    _timed("secrets", [str(REPO / ".venv" / "bin" / "santelake"), "secrets", "--namespace", NAMESPACE,
                       "--release", RELEASE, "-f", str(VALUES), "--kubectl", cluster.kubectl],
           timeout=300, env=cluster.env)
    _timed("helm install --wait", [cluster.helm, "upgrade", "--install", RELEASE, str(CHART_DIR), "-n", NAMESPACE,
                                   "-f", str(VALUES), "--wait", "--timeout", "30m"], timeout=2000, env=cluster.env)
    return cluster
