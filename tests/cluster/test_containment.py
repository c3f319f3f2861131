"""The release's NetworkPolicies are enforced, not just accepted: a pod outside the allowed set
cannot reach PostgreSQL, the object store or Trino's internal port, while an allowed one can."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from santelake.config import load_settings
from tests.cluster.conftest import REGISTRY, RELEASE, Cluster

pytestmark = pytest.mark.cluster

NAME = RELEASE if "santelake" in RELEASE else f"{RELEASE}-santelake"
CONTAINERD = "unix:///run/santelake-cluster/containerd.sock"  # infra/cluster/lib.sh
TARGETS = [(f"{NAME}-postgresql", 5432), (f"{NAME}-minio", 9000), (f"{NAME}-trino-internal", 8080)]


def _busybox() -> str:
    """The busybox image infra/cluster pushes for its own selftest."""
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "busybox-static"], capture_output=True,
                             text=True, check=True).stdout
    tag = "".join(c if c.isalnum() or c in "_.-" else "-" for c in version.split(":")[-1])
    return f"{REGISTRY}/busybox:{tag}"


@pytest.fixture()
def pod(release: Cluster) -> Iterator[object]:
    made: list[str] = []

    def start(labels: dict[str, str]) -> str:
        name = f"probe-{uuid.uuid4().hex[:6]}"
        release.run("run", name, f"--image={_busybox()}", "--restart=Never",
                    f"--labels={','.join(f'{k}={v}' for k, v in labels.items())}", "--", "sleep", "600")
        made.append(name)
        release.run("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=120s", timeout=150)
        return name

    yield start
    for name in made:
        release.run("delete", "pod", name, "--grace-period=1", check=False, timeout=120)


def _connects(release: Cluster, pod: str, host: str, port: int) -> bool:
    # Three tries: a policy is not shown enforced by one failed connection. busybox's nc has no -z:
    # it connects, reads nothing, and exits 0 only if the connection opened.
    tries = [release.run("exec", pod, "--", "sh", "-c", f"nc -w 3 {host} {port} </dev/null", check=False,
                         timeout=30) for _ in range(3)]
    return any(t.returncode == 0 for t in tries)


def test_a_pod_outside_the_allowed_set_reaches_nothing_it_is_not_granted(release: Cluster, pod: object) -> None:
    outsider = pod({"app": "outsider"})  # type: ignore[operator]
    for host, port in TARGETS:
        assert not _connects(release, outsider, host, port), f"an unlisted pod reached {host}:{port}"


def test_an_allowed_pod_does_connect_so_the_refusal_is_the_policy(release: Cluster, pod: object) -> None:
    # Labelled as an Airflow pod of the release: its policies let it reach PostgreSQL and the store.
    allowed = pod({"app.kubernetes.io/instance": RELEASE, "santelake.io/airflow": "true"})  # type: ignore[operator]
    for host, port in TARGETS[:2]:
        assert _connects(release, allowed, host, port), f"an Airflow pod could not reach {host}:{port}"
    assert not _connects(release, allowed, *TARGETS[2]), "Trino's internal port answers Trino's nodes only"


def test_every_running_container_is_non_root_on_a_read_only_root(release: Cluster) -> None:
    """As the container runtime runs them (its OCI spec), not only as the chart asks: images such as
    MinIO's hold a single binary, with no shell to ask from inside."""
    crictl = str(load_settings().cache_dir / "k8s" / "crictl-v1.34.0" / "crictl")
    pods = release.json("get", "pods", "-l", f"app.kubernetes.io/instance={RELEASE}")["items"]
    checked = []
    for item in pods:
        if not item["metadata"].get("ownerReferences"):
            continue  # a bare pod a test made (the probes above), not the release's
        for status in item["status"].get("containerStatuses", []):
            if "running" not in status.get("state", {}):
                continue  # finished Jobs
            where = f"{item['metadata']['name']}/{status['name']}"
            inspected = subprocess.run([crictl, "--runtime-endpoint", CONTAINERD, "inspect",
                                        status["containerID"].split("://", 1)[1]],
                                       capture_output=True, text=True, check=True, timeout=30)
            spec = json.loads(inspected.stdout)["info"]["runtimeSpec"]
            assert spec["process"]["user"]["uid"] > 0, f"{where} runs as root"
            assert spec["root"].get("readonly") is True, f"{where}: root filesystem is writable"
            checked.append(where)
    assert len(checked) >= 10, checked  # Trino x3, Keycloak, PostgreSQL, MinIO, Airflow x4
