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
import requests

from santelake.config import load_settings
from santelake.names import REALM
from santelake.render.helm import CHART_DIR, helm_binary
from santelake.render.keycloak import CLI_CLIENT

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "santelake-e2e"
RELEASE = "santelake"
REGISTRY = "127.0.0.1:5000"
VALUES = CHART_DIR / "ci" / "cluster-values.yaml"
CLUSTER_DIR = Path(os.environ.get("SANTELAKE_CLUSTER_DIR", "/var/lib/santelake-cluster"))
KUBECONFIG = CLUSTER_DIR / "kubeconfig" / "admin.conf"
# Objects are named <release>-santelake-<part>, or santelake-<part> when the release is called santelake.
NAME = RELEASE if "santelake" in RELEASE else f"{RELEASE}-santelake"


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
    namespace: str = NAMESPACE

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self.kubectl, "-n", self.namespace, *args], capture_output=True, text=True,
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
        process = subprocess.Popen([self.kubectl, "-n", self.namespace, "port-forward", target, f"{local}:{port}"],
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


def install(cluster: Cluster, *extra: str) -> Cluster:
    """The chart installed in ``cluster.namespace`` as an operator does: namespace, `santelake secrets`,
    `helm upgrade --install --wait` (with ``extra`` helm arguments)."""
    namespace = cluster.namespace
    if cluster.run("get", "namespace", namespace, check=False).returncode != 0:
        subprocess.run([cluster.kubectl, "create", "namespace", namespace], env=cluster.env, check=True,
                       capture_output=True)
    _timed(f"secrets ({namespace})", [str(REPO / ".venv" / "bin" / "santelake"), "secrets", "--namespace", namespace,
                                      "--release", RELEASE, "-f", str(VALUES), "--kubectl", cluster.kubectl],
           timeout=300, env=cluster.env)
    _timed(f"helm install --wait ({namespace})",
           [cluster.helm, "upgrade", "--install", RELEASE, str(CHART_DIR), "-n", namespace, "-f", str(VALUES),
            *extra, "--wait", "--timeout", "30m"], timeout=2000, env=cluster.env)
    return cluster


@pytest.fixture(scope="session")
def release(cluster: Cluster, images: None) -> Cluster:
    """The chart installed in a new namespace, `helm install --wait` returned. A namespace left by an
    earlier run on the same machine (its lake included) is deleted first: each run installs from
    nothing, as an operator's first install does, and no test reads an earlier run's data."""
    if cluster.run("get", "namespace", cluster.namespace, check=False).returncode == 0:
        _timed(f"earlier namespace deleted ({cluster.namespace})",
               [cluster.kubectl, "delete", "namespace", cluster.namespace, "--wait", "--timeout=600s"],
               timeout=700, env=cluster.env)
    return install(cluster)

@dataclass(frozen=True)
class Loaded:
    keys: list[str]  # the landed extracts' keys
    rejected: set[str]  # those of them the scheduler rejected


@pytest.fixture(scope="session")
def loaded(release: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    """The demo extracts landed in the release's landing bucket and loaded by the cluster's scheduler:
    the lake the other tests read."""
    from santelake.ingest.landing import INCOMING, REJECTED, Landing
    from santelake.lake.storage import s3_client
    from santelake.synth import synthesize

    work = tmp_path_factory.mktemp("demo")
    ca = ca_file(release, work)
    report = synthesize(work / "extracts", scale=2000, seed=2026)
    with release.forward(f"svc/{NAME}-minio", 9000) as port:
        client = s3_client(f"localhost:{port}", release.secret("santelake-s3-ingest", "access-key"),
                           release.secret("santelake-s3-ingest", "secret-key"), ca)
        landing = Landing(client, "santelake-landing")
        keys = [landing.land(item.table, Path(item.path)) for item in report.files]
        started = time.monotonic()
        while {o.key for o in landing.objects(INCOMING)} & set(keys):
            assert time.monotonic() - started < 900, "the scheduler did not load the extracts within 15 minutes"
            time.sleep(5)
        print(f"\n[cluster] landed to loaded by the cluster's scheduler: {time.monotonic() - started:.0f} s")
        rejected = {o.name for o in landing.objects(REJECTED)} & {Path(k).name for k in keys}
    return Loaded(keys, rejected)


def ca_file(release: Cluster, tmp_path: Path) -> Path:
    path = tmp_path / "ca.crt"
    path.write_text(release.secret("santelake-tls", "ca.crt"))
    return path


def keycloak_admin(release: Cluster, keycloak: int, ca: Path) -> Any:
    """The realm's admin API (the bootstrap admin's), through a port-forward on ``keycloak``."""
    from keycloak import KeycloakAdmin

    return KeycloakAdmin(server_url=f"https://localhost:{keycloak}/",
                         username=release.secret("santelake-keycloak-admin", "username"),
                         password=release.secret("santelake-keycloak-admin", "password"),
                         realm_name=REALM, user_realm_name="master", verify=str(ca))


def user_with_password(admin: Any, user: str) -> str:
    """``user`` in the realm (made if missing) with a new password, returned."""
    password = "e2e-" + str(time.time_ns())
    user_id = admin.get_user_id(user) or admin.create_user(
        {"username": user, "enabled": True, "emailVerified": True, "firstName": user, "lastName": "E2e",
         "email": f"{user}@santelake.invalid"})
    admin.set_user_password(user_id, password, temporary=False)
    return password


def researcher_token(release: Cluster, keycloak: int, ca: Path, user: str) -> str:
    """A token for ``user``, made in the realm through the admin API. The chart's realm has no password
    grant; the test turns it on for the CLI client while it gets the token, and off again."""
    admin = keycloak_admin(release, keycloak, ca)
    password = user_with_password(admin, user)
    client = admin.get_client_id(CLI_CLIENT)
    admin.update_client(client, {"directAccessGrantsEnabled": True})
    try:
        response = requests.post(f"https://localhost:{keycloak}/realms/{REALM}/protocol/openid-connect/token",
                                 data={"grant_type": "password", "client_id": CLI_CLIENT, "username": user,
                                       "password": password, "scope": "openid"}, verify=str(ca), timeout=30)
    finally:
        admin.update_client(client, {"directAccessGrantsEnabled": False})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def query(release: Cluster, user: str, sql: str, ca: Path) -> list[list[Any]]:
    """``sql``'s rows, run as ``user`` (a token from the release's Keycloak) through Trino's Service."""
    import trino
    from trino.auth import JWTAuthentication
    from trino.exceptions import TrinoConnectionError

    with release.forward(f"svc/{NAME}-keycloak", 8443) as keycloak:
        token = researcher_token(release, keycloak, ca, user)
    # A port-forward that has just opened may still drop its first connections (seen right after an
    # install: "connection refused" through a forward whose port had answered): a new forward, twice.
    for attempt in (1, 2, 3):
        with release.forward(f"svc/{NAME}-trino", 8443) as port:
            session = requests.Session()
            session.trust_env = False
            session.verify = str(ca)
            conn = trino.dbapi.connect(host="localhost", port=port, http_scheme="https",
                                       auth=JWTAuthentication(token), catalog="iceberg", http_session=session,
                                       request_timeout=300)
            cursor = conn.cursor()
            try:
                cursor.execute(sql)
                return [list(row) for row in cursor.fetchall()]
            except (TrinoConnectionError, requests.ConnectionError):
                if attempt == 3:
                    raise
                print(f"\n[cluster] the forward to Trino dropped a connection (attempt {attempt}); a new one")
        time.sleep(5)
    raise AssertionError("three attempts returned or raised")


# How long a policy change may take to reach Trino: the kubelet refreshes the mounted ConfigMap
# within about a minute (seen: 91 s on the busy test cluster), then Trino re-reads it within 5 s.
POLICY_PROPAGATION_SECONDS = 300


def once_policy_applies(release: Cluster, user: str, sql: str, ca: Path, expected: list[list[Any]]) -> list[list[Any]]:
    """``sql``'s rows as ``user`` once they are ``expected`` (the policy now in force), or the last rows
    after POLICY_PROPAGATION_SECONDS; a refusal meanwhile (rules that denied) is waited out too."""
    from trino.exceptions import TrinoUserError

    started = time.monotonic()
    rows: list[list[Any]] = []
    while time.monotonic() - started <= POLICY_PROPAGATION_SECONDS:
        try:
            rows = query(release, user, sql, ca)
        except TrinoUserError as denied:
            assert "Access Denied" in str(denied), denied
        if rows == expected:
            break
        time.sleep(10)
    print(f"\n[cluster] {user} sees {rows} {time.monotonic() - started:.0f} s after the policy changed")
    return rows


def table_counts(release: Cluster, ca: Path) -> dict[str, int]:
    """Every snds table's row count, as the data engineer (who reads whole tables) sees it."""
    tables = [row[0] for row in query(release, "dana", "SHOW TABLES FROM iceberg.snds", ca)]
    union = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM iceberg.snds.{t}" for t in tables)
    return {str(name): int(count) for name, count in query(release, "dana", union, ca)}


@contextlib.contextmanager
def resolved(release: Cluster, services: dict[str, int]) -> Iterator[None]:
    """Browsers' addresses of the release's Services (``https://<service>:<port>``, the chart's defaults)
    reach them through port-forwards for the block: names and certificates stay the real ones."""
    import urllib3.util.connection as connection

    with contextlib.ExitStack() as stack:
        local = {(name, port): stack.enter_context(release.forward(f"svc/{name}", port))
                 for name, port in services.items()}
        original = connection.create_connection

        def create(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
            if tuple(address) in local:
                address = ("127.0.0.1", local[(address[0], address[1])])
            return original(address, *args, **kwargs)

        connection.create_connection = create
        try:
            yield
        finally:
            connection.create_connection = original
