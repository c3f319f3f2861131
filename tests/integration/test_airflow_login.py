"""Operators log in to Airflow through Keycloak (authorization code flow, TLS verified with the
platform CA): the platform admins of policies/ get Airflow's Admin, any other user nothing."""

from __future__ import annotations

import json
import uuid
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from santelake.names import AIRFLOW_CLIENT, TRINO_AUDIENCE
from santelake.policy.build import build
from santelake.render.keycloak import AIRFLOW_SECRET_ENV, AIRFLOW_URL_ENV, placeholder, realm_json
from santelake.runtime import devusers
from santelake.runtime.layout import Layout
from santelake.runtime.services.keycloak import Keycloak

TIMEOUT = 60  # the first authorisation check of an API server process warms it up, on 2 busy cores


class _LoginForm(HTMLParser):
    """Keycloak's login page: where its form posts, and its hidden fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form" and attributes.get("id") == "kc-form-login":
            self.action, self._inside = attributes.get("action"), True
        elif tag == "input" and self._inside and attributes.get("name"):
            self.fields[str(attributes["name"])] = attributes.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def _session(layout: Layout) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override the CA below
    session.verify = str(layout.tls.ca_cert)
    return session


def log_in(layout: Layout, user: str) -> requests.Session:
    """A browser's way in: Airflow's login sends it to Keycloak, the login form goes back to Airflow."""
    airflow, session = layout.url("airflow"), _session(layout)
    start = session.get(f"{airflow}/auth/login", allow_redirects=False, timeout=TIMEOUT)
    assert start.status_code in (302, 303, 307), start.text
    to_keycloak = start.headers["location"]
    assert to_keycloak.startswith(f"{layout.keycloak_issuer}/protocol/openid-connect/auth?"), to_keycloak
    asked = parse_qs(urlsplit(to_keycloak).query)
    assert asked["client_id"] == [AIRFLOW_CLIENT] and asked["response_type"] == ["code"]
    assert asked["redirect_uri"] == [f"{airflow}/auth/login_callback"]

    page = session.get(to_keycloak, timeout=TIMEOUT)
    assert page.status_code == 200, page.text[-2000:]
    form = _LoginForm()
    form.feed(page.text)
    assert form.action and form.action.startswith(f"{layout.keycloak_issuer}/login-actions/"), form.action
    password = devusers.passwords(layout)[user]
    answer = session.post(form.action, data=form.fields | {"username": user, "password": password},
                          allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 302, f"Keycloak refused {user}'s login: {answer.text[-2000:]}"
    back = answer.headers["location"]
    assert back.startswith(f"{airflow}/auth/login_callback?"), back
    assert "code" in parse_qs(urlsplit(back).query)

    done = session.get(back, allow_redirects=False, timeout=TIMEOUT)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == airflow
    assert session.cookies.get("_token"), "Airflow set no session cookie"
    return session


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
    text = text.replace(placeholder(AIRFLOW_URL_ENV), "https://airflow.example").replace(
        placeholder(AIRFLOW_SECRET_ENV), uuid.uuid4().hex)
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
    finally:
        admin.delete_realm(name)
