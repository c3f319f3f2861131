"""helm test: `santelake smoke-test`, the realm's service-account client and what the pod is given."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from santelake.errors import ConfigError
from santelake.names import REALM, TRINO_AUDIENCE
from santelake.policy.build import build
from santelake.render import helm as chart
from santelake.render import smoketest
from santelake.render.keycloak import SMOKE_TEST_CLIENT, realm_json
from santelake.runtime import secrets
from tests.unit.helm.conftest import Rendered

Render = Callable[[str], Rendered]


def _test_pod(rendered: Rendered) -> dict[str, Any]:
    return rendered.named("Pod", "-test-query")


def test_realm_gains_only_the_client_and_its_secret_is_a_placeholder(render: Render) -> None:
    compiled = build(day=chart.recorded_policy_day(chart.CHART_DIR)).compiled
    groups, admins = compiled.groups, compiled.airflow_admins
    chart_realm = render("helmtest").named("ConfigMap", "-keycloak-realm")["data"][f"{REALM}-realm.json"]
    assert chart_realm == realm_json(REALM, TRINO_AUDIENCE, groups, airflow_admins=admins, allow_password_grant=False,
                                     smoke_test_secret_env=smoketest.REALM_SECRET_ENV)
    ours = json.loads(chart_realm)
    without = json.loads(realm_json(REALM, TRINO_AUDIENCE, groups, airflow_admins=admins, allow_password_grant=False))
    added = [c for c in ours["clients"] if c["clientId"] == SMOKE_TEST_CLIENT]
    ours["clients"] = [c for c in ours["clients"] if c["clientId"] != SMOKE_TEST_CLIENT]
    assert ours == without
    (client,) = added
    assert client["secret"] == f"${{{smoketest.REALM_SECRET_ENV}}}"
    assert client["serviceAccountsEnabled"] is True and client["publicClient"] is False
    assert not (client["standardFlowEnabled"] or client["directAccessGrantsEnabled"] or client["implicitFlowEnabled"])
    assert [m["config"]["included.custom.audience"] for m in client["protocolMappers"]] == [TRINO_AUDIENCE]


def test_off_by_default_the_realm_has_no_such_client(render: Render) -> None:
    realm = json.loads(render("minimal").named("ConfigMap", "-keycloak-realm")["data"][f"{REALM}-realm.json"])
    assert SMOKE_TEST_CLIENT not in [c["clientId"] for c in realm["clients"]]
    keycloak = render("minimal").named("StatefulSet", "-keycloak")["spec"]["template"]["spec"]["containers"][0]
    assert smoketest.REALM_SECRET_ENV not in [e["name"] for e in keycloak["env"]]


def test_keycloak_resolves_the_client_secret_from_the_existing_secret(render: Render) -> None:
    keycloak = render("helmtest").named("StatefulSet", "-keycloak")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in keycloak["env"]}
    assert env[smoketest.REALM_SECRET_ENV]["valueFrom"]["secretKeyRef"] == {
        "name": "santelake-helm-test-client", "key": "client-secret"}


@pytest.mark.parametrize(("scenario", "with_client"), [("minimal", False), ("helmtest", True)])
def test_the_pod_gives_the_command_what_it_needs(render: Render, tmp_path: Path, scenario: str,
                                                 with_client: bool) -> None:
    spec = _test_pod(render(scenario))["spec"]
    (container,) = spec["containers"]
    assert container["command"] == ["santelake", "smoke-test"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    files = {}
    for volume in spec["volumes"]:
        if "secret" in volume:
            for item in volume["secret"]["items"]:
                files[f"{mounts[volume['name']]}/{item['path']}"] = (volume["secret"]["secretName"], item["key"])
    env = {}
    for variable in container["env"]:
        assert "valueFrom" not in variable
        name, value = variable["name"], variable["value"]
        if name.endswith("_FILE") or name.endswith("_CA_FILE"):
            assert value in files, f"{name}: {value} is not mounted"
        if name.startswith("SANTELAKE_SECRET_"):
            assert files[value] == ("santelake-helm-test-client", "client-secret")
            (tmp_path / "secret").write_text("s3cret\n")
            value = str(tmp_path / "secret")
        env[name] = value
    test = smoketest.smoke_test_from_env(env)
    assert test.trino_url == "https://santelake-trino:8443"
    assert (test.client is not None) == with_client
    if test.client is not None:
        assert test.client.token_url == ("https://santelake-keycloak:8443/realms/santelake/protocol/openid-connect/"
                                         "token")
        assert test.client.secret == "s3cret" and test.client.client_id == SMOKE_TEST_CLIENT


def _peers(policy: dict[str, Any], port: int) -> list[str]:
    # Airflow's pods are selected by their santelake.io/airflow label, not a component.
    return [p["podSelector"]["matchLabels"].get("app.kubernetes.io/component", "airflow")
            for rule in policy["spec"]["ingress"] if {"protocol": "TCP", "port": port} in rule["ports"]
            for p in rule.get("from", []) if "podSelector" in p]


def test_the_pod_reaches_trino_and_keycloak_when_researchers_are_limited(render: Render) -> None:
    rendered = render("helmtest")
    assert "test" in _peers(rendered.named("NetworkPolicy", "-trino-coordinator"), 8443)
    assert "test" in _peers(rendered.named("NetworkPolicy", "-keycloak"), 8443)
    egress = rendered.named("NetworkPolicy", "-test")["spec"]["egress"]
    reached = sorted(p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                     for rule in egress for p in rule["to"])
    assert reached == ["keycloak", "trino-coordinator"]
    # Without the client the pod only talks to Trino.
    egress = render("minimal").named("NetworkPolicy", "-test")["spec"]["egress"]
    assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
            for rule in egress for p in rule["to"]] == ["trino-coordinator"]


def _env(tmp_path: Path, **changes: str) -> dict[str, str]:
    (tmp_path / "secret").write_text("s3cret\n")
    env = {smoketest.ENV_TRINO_URL: "https://trino:8443", smoketest.ENV_TRINO_CA_FILE: "/t.crt",
           smoketest.ENV_ISSUER: "https://kc:8443/realms/santelake", smoketest.ENV_KEYCLOAK_CA_FILE: "/k.crt",
           f"{secrets.env_name(smoketest.SECRET_CLIENT)}_FILE": str(tmp_path / "secret")}
    env.update(changes)
    return {k: v for k, v in env.items() if v}


@pytest.mark.parametrize(("changes", "expected"), [
    ({f"{secrets.env_name(smoketest.SECRET_CLIENT)}_FILE": ""}, "SANTELAKE_SECRET_SMOKE_TEST_CLIENT_SECRET_FILE"),
    ({smoketest.ENV_ISSUER: ""}, smoketest.ENV_ISSUER),
    ({smoketest.ENV_TRINO_URL: ""}, smoketest.ENV_TRINO_URL),
    ({smoketest.ENV_TRINO_URL: "http://trino:8080"}, "is not an https:// URL"),
])
def test_incomplete_settings_are_refused_by_name(tmp_path: Path, changes: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        smoketest.smoke_test_from_env(_env(tmp_path, **changes))


def test_an_unreachable_trino_is_retried_then_reported_by_address(tmp_path: Path) -> None:
    import socket

    import certifi

    from santelake.errors import ServiceError
    from santelake.render.smoketest import refused_without_token

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ca = tmp_path / "ca.pem"
    ca.write_text(Path(certifi.where()).read_text())  # any CA: nothing answers the connection
    said: list[str] = []
    with pytest.raises(ServiceError, match=rf"Trino at https://127.0.0.1:{port} could not be reached for 6 s"):
        refused_without_token(f"https://127.0.0.1:{port}", str(ca), log=said.append, patience=6)
    assert len(said) >= 2 and all("not reachable yet" in line for line in said), said
