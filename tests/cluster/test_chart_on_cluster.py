"""The chart installed on a real cluster loads landed extracts with its own scheduler, answers a
researcher's query on its Trino workers, and passes helm test."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests

from santelake.ingest.landing import INCOMING, REJECTED, Landing
from santelake.lake.storage import s3_client
from santelake.names import REALM
from santelake.render.keycloak import CLI_CLIENT
from santelake.synth import synthesize
from tests.cluster.conftest import NAMESPACE, RELEASE, Cluster, _timed

pytestmark = pytest.mark.cluster

# Objects are named <release>-santelake-<part>, or santelake-<part> when the release is called santelake.
NAME = RELEASE if "santelake" in RELEASE else f"{RELEASE}-santelake"


def _ca(release: Cluster, tmp_path: Path) -> Path:
    path = tmp_path / "ca.crt"
    path.write_text(release.secret("santelake-tls", "ca.crt"))
    return path


def test_helm_test_passes(release: Cluster) -> None:
    _timed("helm test", [release.helm, "test", RELEASE, "-n", NAMESPACE, "--timeout", "10m"], timeout=700,
           env=release.env)


def test_extracts_landed_in_the_bucket_are_loaded_by_the_scheduler_in_the_cluster(
        release: Cluster, tmp_path: Path) -> None:
    ca = _ca(release, tmp_path)
    report = synthesize(tmp_path / "extracts", scale=2000, seed=2026)
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
        assert not {o.name for o in landing.objects(REJECTED)} & {Path(k).name for k in keys}


def _researcher_token(release: Cluster, keycloak: int, ca: Path, user: str) -> str:
    """A token for ``user``, made in the realm through the admin API. The chart's realm has no password
    grant; the test turns it on for the CLI client while it gets the token, and off again."""
    from keycloak import KeycloakAdmin

    admin = KeycloakAdmin(server_url=f"https://localhost:{keycloak}/",
                          username=release.secret("santelake-keycloak-admin", "username"),
                          password=release.secret("santelake-keycloak-admin", "password"),
                          realm_name=REALM, user_realm_name="master", verify=str(ca))
    password = "e2e-" + str(time.time_ns())
    user_id = admin.get_user_id(user) or admin.create_user(
        {"username": user, "enabled": True, "emailVerified": True, "firstName": user, "lastName": "E2e",
         "email": f"{user}@santelake.invalid"})
    admin.set_user_password(user_id, password, temporary=False)
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


def test_a_researcher_query_is_answered_through_trinos_service_on_its_workers(
        release: Cluster, tmp_path: Path) -> None:
    import trino
    from trino.auth import JWTAuthentication

    ca = _ca(release, tmp_path)
    with release.forward(f"svc/{NAME}-keycloak", 8443) as keycloak:
        token = _researcher_token(release, keycloak, ca, "alice")
    with release.forward(f"svc/{NAME}-trino", 8443) as port:
        session = requests.Session()
        session.trust_env = False
        session.verify = str(ca)
        conn = trino.dbapi.connect(host="localhost", port=port, http_scheme="https", auth=JWTAuthentication(token),
                                   catalog="iceberg", http_session=session)
        cursor = conn.cursor()
        cursor.execute("SELECT count(*), count(DISTINCT person_id) FROM iceberg.snds.hospital_stays")
        stays, persons = cursor.fetchone()
        assert stays > 0 and persons > 0
        info: dict[str, Any] = session.get(f"https://localhost:{port}/v1/query/{cursor.query_id}",
                                           headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    nodes = {task["taskStatus"]["nodeId"] for stage in _stages(info["outputStage"]) for task in stage["tasks"]}
    workers = {node for node in nodes if "-trino-worker-" in node}
    print(f"\n[cluster] {stays} stays of {persons} persons; tasks ran on {sorted(nodes)}")
    assert workers, f"no task ran on a worker: {sorted(nodes)}"


def _stages(stage: dict[str, Any]) -> list[dict[str, Any]]:
    return [stage, *[s for child in stage.get("subStages", []) for s in _stages(child)]]


def test_the_platform_certificate_names_every_service(release: Cluster) -> None:
    from cryptography import x509

    services = {s["metadata"]["name"] for s in release.json("get", "services")["items"]}
    assert {f"{NAME}-trino", f"{NAME}-keycloak", f"{NAME}-postgresql", f"{NAME}-minio"} <= services
    certificate = x509.load_pem_x509_certificate(release.secret("santelake-tls", "tls.crt").encode())
    names = set(certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                .get_values_for_type(x509.DNSName))
    assert all({s, f"{s}.{NAMESPACE}.svc"} <= names for s in services), sorted(services - names)


def test_the_daily_policy_apply_patches_the_policy_configmap(release: Cluster) -> None:
    """The scheduler's task reaches the Kubernetes API with its service account, as its Role allows."""
    configmap = f"{NAME}-policy"
    compiled = release.json("get", "configmap", configmap)["data"]["rules.json"]
    # Stale rules on the ConfigMap, as if the chart had been rendered before a project ended.
    release.run("patch", "configmap", configmap, "--type", "merge", "-p", '{"data": {"rules.json": "{}"}}')
    release.run("exec", f"deploy/{NAME}-airflow-scheduler", "-c", "scheduler", "--",
                "airflow", "dags", "trigger", "policy_apply", timeout=300)
    started = time.monotonic()
    while release.json("get", "configmap", configmap)["data"]["rules.json"] != compiled:
        assert time.monotonic() - started < 600, "the policy_apply DAG did not patch the ConfigMap back"
        time.sleep(5)
    print(f"\n[cluster] policy ConfigMap patched back by the scheduler in {time.monotonic() - started:.0f} s")
    # The scheduler may do exactly that: nothing else in the namespace.
    account = f"--as=system:serviceaccount:{NAMESPACE}:{NAME}-airflow"
    for verb, resource, allowed in (("patch", f"configmap/{configmap}", "yes"),
                                    ("delete", f"configmap/{configmap}", "no"),
                                    ("patch", f"configmap/{NAME}-trino-coordinator", "no"),
                                    ("get", "secrets", "no")):
        answer = release.run("auth", "can-i", verb, resource, account, check=False).stdout.strip()
        assert answer == allowed, (verb, resource, answer)
