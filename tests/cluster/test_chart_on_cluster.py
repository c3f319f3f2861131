"""The chart installed on a real cluster loads landed extracts with its own scheduler, answers a
researcher's query on its Trino workers, and passes helm test."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import trino

from santelake.access.enforce import RULE_SECTIONS
from tests.cluster.conftest import (
    NAME,
    NAMESPACE,
    RELEASE,
    Cluster,
    Loaded,
    _timed,
    ca_file,
    keycloak_admin,
    once_policy_applies,
    query,
    researcher_token,
    resolved,
    user_with_password,
)

pytestmark = pytest.mark.cluster

# What alice's project lets her count: beneficiaries of its region (a row filter), hospital stays.
ALICE_COUNT = ("SELECT (SELECT count(*) FROM iceberg.snds.beneficiaries), "
               "(SELECT count(*) FROM iceberg.snds.hospital_stays)")

def test_helm_test_passes(release: Cluster) -> None:
    _timed("helm test", [release.helm, "test", RELEASE, "-n", NAMESPACE, "--timeout", "10m"], timeout=700,
           env=release.env)


def test_extracts_landed_in_the_bucket_are_loaded_by_the_scheduler_in_the_cluster(loaded: Loaded) -> None:
    """The demo extracts landed in the bucket all left ``incoming/`` (the fixture waits) and none was rejected."""
    assert len(loaded.keys) >= 5
    assert not loaded.rejected, loaded.rejected


def test_a_researcher_query_is_answered_through_trinos_service_on_its_workers(
        release: Cluster, loaded: Loaded, tmp_path: Path) -> None:
    import trino
    from trino.auth import JWTAuthentication

    ca = ca_file(release, tmp_path)
    with release.forward(f"svc/{NAME}-keycloak", 8443) as keycloak:
        token = researcher_token(release, keycloak, ca, "alice")
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


# Stale rules for the ConfigMap: every section present and empty, so nobody reads anything. Not "{}":
# Trino's file-based access control allows whatever a rules file has no section for, so "{}" would
# open every table to everyone until the scheduler patched it back (and Trino re-read it).
STALE_RULES = json.dumps({section: [] for section in RULE_SECTIONS})


def test_the_daily_policy_apply_patches_the_policy_configmap(release: Cluster, loaded: Loaded, tmp_path: Path) -> None:
    """The scheduler's task reaches the Kubernetes API with its service account, as its Role allows,
    and Trino enforces the restored rules again before the test ends (later tests query as alice)."""
    configmap = f"{NAME}-policy"
    compiled = release.json("get", "configmap", configmap)["data"]["rules.json"]
    ca = ca_file(release, tmp_path)
    expected = query(release, "alice", ALICE_COUNT, ca)
    # Stale rules on the ConfigMap, as if the chart had been rendered with an older policy.
    release.run("patch", "configmap", configmap, "--type", "merge",
                "-p", json.dumps({"data": {"rules.json": STALE_RULES}}))
    release.run("exec", f"deploy/{NAME}-airflow-scheduler", "-c", "scheduler", "--",
                "airflow", "dags", "trigger", "policy_apply", timeout=300)
    started = time.monotonic()
    while release.json("get", "configmap", configmap)["data"]["rules.json"] != compiled:
        assert time.monotonic() - started < 600, "the policy_apply DAG did not patch the ConfigMap back"
        time.sleep(5)
    print(f"\n[cluster] policy ConfigMap patched back by the scheduler in {time.monotonic() - started:.0f} s")
    assert once_policy_applies(release, "alice", ALICE_COUNT, ca, expected) == expected, \
        "Trino did not enforce the restored rules"
    # The scheduler may do exactly that: nothing else in the namespace.
    account = f"--as=system:serviceaccount:{NAMESPACE}:{NAME}-airflow"
    for verb, resource, allowed in (("patch", f"configmap/{configmap}", "yes"),
                                    ("delete", f"configmap/{configmap}", "no"),
                                    ("patch", f"configmap/{NAME}-trino-coordinator", "no"),
                                    ("get", "secrets", "no")):
        answer = release.run("auth", "can-i", verb, resource, account, check=False).stdout.strip()
        assert answer == allowed, (verb, resource, answer)


def test_a_researcher_logs_in_to_trino_through_the_browser(release: Cluster, loaded: Loaded, tmp_path: Path) -> None:
    """The chart's Trino logs a researcher in through Keycloak (Python's trino client, as a notebook
    would): one login, the username as principal, her project's data. Browser addresses are the
    chart's defaults (trino.url, keycloak.hostname), reached through port-forwards."""
    from trino.auth import OAuth2Authentication

    from santelake.names import REALM
    from tests.support.browser_login import log_in_to_trino
    from tests.support.browser_login import session as browser

    ca = ca_file(release, tmp_path)
    keycloak_service, trino_service = f"{NAME}-keycloak", f"{NAME}-trino"
    with release.forward(f"svc/{keycloak_service}", 8443) as keycloak:
        password = user_with_password(keycloak_admin(release, keycloak, ca), "alice")
    trino_url, issuer = f"https://{trino_service}:8443", f"https://{keycloak_service}:8443/realms/{REALM}"
    links: list[str] = []

    def open_in_browser(link: str) -> None:
        links.append(link)
        log_in_to_trino(link, trino_url, issuer, str(ca), "alice", password)

    with resolved(release, {trino_service: 8443, keycloak_service: 8443}):
        conn = trino.dbapi.connect(host=trino_service, port=8443, http_scheme="https", catalog="iceberg",
                                   auth=OAuth2Authentication(redirect_auth_url_handler=open_in_browser),
                                   http_session=browser(str(ca)))
        cursor = conn.cursor()
        cursor.execute("SELECT current_user, n FROM (SELECT count(*) AS n FROM iceberg.snds.hospital_stays)")
        (user, stays), = cursor.fetchall()
    assert user == "alice" and stays > 0 and len(links) == 1, (user, stays, links)
