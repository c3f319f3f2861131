"""Operators' login to Airflow in the chart: Keycloak and Airflow's API server agree on the client,
its secret and each other's addresses, and nothing of the simple auth manager is left."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from santelake.names import REALM
from santelake.render import airflow
from santelake.render import helm as chart
from santelake.render.keycloak import AIRFLOW_SECRET_ENV, AIRFLOW_URL_ENV
from tests.unit.helm.conftest import SCENARIOS, Rendered

Render = Callable[[str], Rendered]
_PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)\}")


def _container(rendered: Rendered, kind: str, suffix: str) -> dict[str, Any]:
    return dict(rendered.named(kind, suffix)["spec"]["template"]["spec"]["containers"][0])


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_keycloak_sets_every_placeholder_of_the_realm_it_imports(render: Render, scenario: str) -> None:
    rendered = render(scenario)
    realm = rendered.named("ConfigMap", "-keycloak-realm")["data"][f"{REALM}-realm.json"]
    placeholders = set(_PLACEHOLDER.findall(realm))
    assert {AIRFLOW_SECRET_ENV, AIRFLOW_URL_ENV} <= placeholders
    assert placeholders <= set(_env(_container(rendered, "StatefulSet", "-keycloak")))


@pytest.mark.parametrize(("scenario", "airflow_url", "keycloak_url"), [
    ("minimal", "https://santelake-airflow-api-server:8080", "https://santelake-keycloak:8443"),
    ("production", "https://airflow.santelake-site.example", "https://login.santelake-site.example"),
])
def test_keycloak_and_the_api_server_agree_on_the_client_and_the_addresses(
        render: Render, scenario: str, airflow_url: str, keycloak_url: str) -> None:
    rendered = render(scenario)
    keycloak = _env(_container(rendered, "StatefulSet", "-keycloak"))
    api = _env(_container(rendered, "Deployment", "-airflow-api-server"))
    # The same Secret's key: Keycloak imports it into the client, the API server presents it.
    secret = {"name": "santelake-airflow-client", "key": airflow.CLIENT_SECRET_KEY}
    assert keycloak[AIRFLOW_SECRET_ENV]["valueFrom"]["secretKeyRef"] == secret
    assert api[airflow.CLIENT_SECRET]["valueFrom"]["secretKeyRef"] == secret
    # Keycloak sends the browser back to Airflow's public URL, which is Airflow's base URL.
    assert keycloak[AIRFLOW_URL_ENV]["value"] == airflow_url
    assert api["AIRFLOW__API__BASE_URL"]["value"] == f"$({chart.ENV_AIRFLOW_PUBLIC_URL})"
    assert api[chart.ENV_AIRFLOW_PUBLIC_URL]["value"] == airflow_url
    # The API server sends the browser to Keycloak's public URL, the token issuer's.
    assert keycloak["KC_HOSTNAME"]["value"] == keycloak_url
    assert api["AIRFLOW__KEYCLOAK_AUTH_MANAGER__SERVER_URL"]["value"] == f"$({chart.ENV_AIRFLOW_KEYCLOAK_URL})"
    assert api[chart.ENV_AIRFLOW_KEYCLOAK_URL]["value"] == keycloak_url


@pytest.mark.parametrize(("scenario", "secret"), [("minimal", "santelake-tls"),
                                                  ("tls", "santelake-keycloak-public-tls")])
def test_the_api_server_verifies_keycloak_with_keycloaks_own_ca(render: Render, scenario: str, secret: str) -> None:
    spec = render(scenario).named("Deployment", "-airflow-api-server")["spec"]["template"]["spec"]
    env = _env(spec["containers"][0])
    assert env["REQUESTS_CA_BUNDLE"]["value"] == chart.AIRFLOW_KEYCLOAK_CA
    volume = next(v for v in spec["volumes"] if v["name"] == "keycloak-ca")
    assert volume["secret"]["secretName"] == secret
    assert volume["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]


def test_the_api_server_and_operators_reach_keycloak_when_peers_are_limited(render: Render) -> None:
    rendered = render("production")
    (login,) = [rule for rule in rendered.named("NetworkPolicy", "-keycloak")["spec"]["ingress"]
                if {"protocol": "TCP", "port": 8443} in rule["ports"]]
    airflow_pods = {"app.kubernetes.io/instance": "santelake", "santelake.io/airflow": "true"}
    assert {"podSelector": {"matchLabels": airflow_pods}} in login["from"]
    # Operators' browsers (networkPolicy.airflowPeers) are sent to Keycloak's login page.
    assert {"ipBlock": {"cidr": "10.60.0.0/24"}} in login["from"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_nothing_of_the_simple_auth_manager_is_left(render: Render, scenario: str) -> None:
    text = json.dumps(render(scenario).documents)
    assert "SIMPLE_AUTH_MANAGER" not in text and "passwords.json" not in text
