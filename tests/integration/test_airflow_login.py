"""Operators log in to Airflow through Keycloak (authorization code flow, TLS verified with the
platform CA): the platform admins of policies/ get Airflow's Admin, any other user nothing."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from santelake.names import AIRFLOW_CLIENT, TRINO_AUDIENCE
from santelake.policy.build import build
from santelake.render.keycloak import (
    AIRFLOW_SECRET_ENV,
    AIRFLOW_URL_ENV,
    TRINO_SECRET_ENV,
    TRINO_URL_ENV,
    placeholder,
    realm_json,
)
from santelake.runtime import devusers
from santelake.runtime.layout import Layout
from santelake.runtime.services.keycloak import Keycloak
from tests.support import browser_login
from tests.support.browser_login import TIMEOUT


def _session(layout: Layout) -> requests.Session:
    return browser_login.session(str(layout.tls.ca_cert))


def log_in(layout: Layout, user: str) -> requests.Session:
    return browser_login.log_in(layout.url("airflow"), layout.keycloak_issuer, str(layout.tls.ca_cert), user,
                                devusers.passwords(layout)[user])


def test_health_answers_without_login_and_the_api_asks_for_one(layout: Layout) -> None:
    anonymous = _session(layout)
    assert anonymous.get(f"{layout.url('airflow')}/api/v2/monitor/health", timeout=TIMEOUT).status_code == 200
    assert anonymous.get(f"{layout.url('airflow')}/api/v2/dags", timeout=TIMEOUT).status_code == 401


@pytest.fixture(scope="module")
def pat(layout: Layout) -> requests.Session:
    return log_in(layout, "pat")  # platform_admin in policies/staff.yaml


@pytest.fixture(scope="module")
def alice(layout: Layout) -> requests.Session:
    return log_in(layout, "alice")  # a researcher: Keycloak lets her in, Airflow must not


def test_a_platform_admin_lists_the_dags_and_sees_every_menu(layout: Layout, pat: requests.Session) -> None:
    me = pat.get(f"{layout.url('airflow')}/ui/auth/me", timeout=TIMEOUT)
    assert me.status_code == 200 and me.json()["username"] == "pat"
    dags = pat.get(f"{layout.url('airflow')}/api/v2/dags", timeout=TIMEOUT)
    assert dags.status_code == 200, dags.text
    assert {"ingest", "policy_apply"} <= {d["dag_id"] for d in dags.json()["dags"]}
    menus = pat.get(f"{layout.url('airflow')}/ui/auth/menus", timeout=TIMEOUT)
    assert menus.status_code == 200
    assert {"Dags", "Connections", "Variables", "Config"} <= set(menus.json()["authorized_menu_items"])


def test_a_researcher_logged_in_through_keycloak_gets_nothing(layout: Layout, alice: requests.Session) -> None:
    airflow = layout.url("airflow")
    me = alice.get(f"{airflow}/ui/auth/me", timeout=TIMEOUT)
    assert me.status_code == 200 and me.json()["username"] == "alice"  # logged in: a refusal, not a login loop
    for path in ("/api/v2/dags", "/api/v2/dags/ingest", "/api/v2/connections", "/api/v2/variables",
                 "/api/v2/config", "/api/v2/pools"):
        assert alice.get(f"{airflow}{path}", timeout=TIMEOUT).status_code == 403, path
    trigger = alice.post(f"{airflow}/api/v2/dags/ingest/dagRuns", json={"logical_date": None}, timeout=TIMEOUT)
    assert trigger.status_code == 403
    menus = alice.get(f"{airflow}/ui/auth/menus", timeout=TIMEOUT)
    assert menus.status_code == 200 and menus.json()["authorized_menu_items"] == []


def test_the_realm_file_imports_with_airflows_authorisation(layout: Layout) -> None:
    """What a first start imports (the chart's case; locally an older realm gets the client through
    the admin API): the file, its placeholders resolved as Keycloak does, into a scratch realm."""
    compiled = build().compiled
    name = f"it-{uuid.uuid4().hex[:8]}"
    text = realm_json(name, TRINO_AUDIENCE, compiled.groups, airflow_admins=compiled.airflow_admins,
                      allow_password_grant=False)
    for variable, value in ((AIRFLOW_URL_ENV, "https://airflow.example"), (AIRFLOW_SECRET_ENV, uuid.uuid4().hex),
                            (TRINO_URL_ENV, "https://trino.example:8443"), (TRINO_SECRET_ENV, uuid.uuid4().hex)):
        text = text.replace(placeholder(variable), value)
    admin = Keycloak(layout).admin()
    admin.create_realm(json.loads(text))
    try:
        admin.change_current_realm(name)
        client = admin.get_client_id(AIRFLOW_CLIENT)
        settings = admin.get_client_authz_settings(client)
        assert settings["policyEnforcementMode"] == "ENFORCING"
        assert {p["name"] for p in settings["policies"]} == {f"members of {compiled.airflow_admins}", "Admin"}
        (group_policy,) = [p for p in admin.get_client_authz_policies(client) if p["type"] == "group"]
        (group,) = json.loads(group_policy["config"]["groups"])
        assert admin.get_group(group["id"])["name"] == compiled.airflow_admins
        # Trino's browser login client, as the file has it: the code flow to its callback only.
        trino = admin.get_client(admin.get_client_id(TRINO_AUDIENCE))
        assert trino["standardFlowEnabled"] and not trino["publicClient"] and not trino["bearerOnly"]
        assert trino["redirectUris"] == ["https://trino.example:8443/oauth2/callback"]
    finally:
        admin.delete_realm(name)
