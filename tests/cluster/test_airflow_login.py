"""Operators log in to the cluster's Airflow through the release's Keycloak: the platform admins
of policies/ get Airflow's Admin, anyone else nothing. Browser addresses are the chart's
defaults (the Services' names), reached through port-forwards with TLS verified."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from santelake.names import REALM
from tests.cluster.conftest import NAME, Cluster, ca_file, keycloak_admin, resolved, user_with_password
from tests.support import browser_login
from tests.support.browser_login import TIMEOUT

pytestmark = pytest.mark.cluster

AIRFLOW = f"{NAME}-airflow-api-server"
KEYCLOAK = f"{NAME}-keycloak"
ADMINS = "platform_admins"  # pat's group (policies/staff.yaml: platform_admin)


def test_a_platform_admin_gets_airflow_and_a_researcher_gets_nothing(release: Cluster, tmp_path: Path) -> None:
    ca = ca_file(release, tmp_path)
    with release.forward(f"svc/{KEYCLOAK}", 8443) as keycloak:
        admin = keycloak_admin(release, keycloak, ca)
        passwords = {user: user_with_password(admin, user) for user in ("pat", "alice")}
        # Group members come from the policies, applied by the scheduler's policy_apply DAG.
        release.run("exec", f"deploy/{NAME}-airflow-scheduler", "-c", "scheduler", "--",
                    "airflow", "dags", "trigger", "policy_apply", timeout=300)
        started = time.monotonic()
        while ADMINS not in {g["name"] for g in admin.get_user_groups(admin.get_user_id("pat"))}:
            assert time.monotonic() - started < 600, "policy_apply did not put pat in platform_admins"
            time.sleep(5)
    airflow, issuer = f"https://{AIRFLOW}:8080", f"https://{KEYCLOAK}:8443/realms/{REALM}"
    with resolved(release, {AIRFLOW: 8080, KEYCLOAK: 8443}):
        assert browser_login.session(str(ca)).get(f"{airflow}/api/v2/dags", timeout=TIMEOUT).status_code == 401
        pat = browser_login.log_in(airflow, issuer, str(ca), "pat", passwords["pat"])
        dags = pat.get(f"{airflow}/api/v2/dags", timeout=TIMEOUT)
        assert dags.status_code == 200, dags.text
        assert {"ingest", "policy_apply"} <= {d["dag_id"] for d in dags.json()["dags"]}
        alice = browser_login.log_in(airflow, issuer, str(ca), "alice", passwords["alice"])
        assert alice.get(f"{airflow}/ui/auth/me", timeout=TIMEOUT).json()["username"] == "alice"
        for path in ("/api/v2/dags", "/api/v2/connections", "/api/v2/variables", "/api/v2/config"):
            assert alice.get(f"{airflow}{path}", timeout=TIMEOUT).status_code == 403, path
