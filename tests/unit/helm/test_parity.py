"""The chart runs the configuration the local runtime runs: same generators, same policy,
and parameters that differ only in where things are (paths, addresses, sizes)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from santelake.config import load_settings
from santelake.names import REALM, TRINO_AUDIENCE
from santelake.policy.build import build
from santelake.render import helm as chart
from santelake.render import trino
from santelake.render.keycloak import realm_json
from santelake.runtime.layout import Layout
from santelake.runtime.services.trino import Trino
from tests.unit.helm.conftest import Rendered

# TrinoParams fields that say where things are, not what Trino does: only these may differ.
DEPLOYMENT_FIELDS = (
    "etc_dir", "node_id", "bind_ip", "internal_address", "http_port", "https_port", "keystore_path",
    "truststore_path", "jwks_ca_path", "issuer", "catalog_jdbc_url", "catalog_user", "warehouse",
    "s3_endpoint", "heap", "query_max_memory", "query_max_memory_per_node", "log_path", "discovery_uri",
    # Where the audit receiver and the trail's database are, and the CA the listener verifies with.
    "audit_uri", "audit_jdbc_url", "audit_ca_path",
)


def _chart_files(rendered: Rendered, config_map: str) -> dict[str, str]:
    """A ConfigMap's files by their path in the pod, as the volume items lay them out."""
    data = rendered.named("ConfigMap", config_map)["data"]
    return {key.replace("_", "/", 1) if key.startswith("catalog_") else key: text for key, text in data.items()}


@pytest.fixture(scope="module")
def local_params(tmp_path_factory: pytest.TempPathFactory) -> trino.TrinoParams:
    layout = Layout(load_settings({"state_dir": tmp_path_factory.mktemp("state")}, env={}))
    return Trino(layout).params()


@pytest.mark.parametrize("role", ["coordinator", "worker"])
def test_trino_files_equal_the_local_generators_output(
        render: Callable[[str], Rendered], local_params: trino.TrinoParams, role: str) -> None:
    coordinator = role == "coordinator"
    chart_params = chart.trino_params(coordinator=coordinator)
    # The local parameters, moved to the chart's places, are the chart's parameters.
    moved = replace(local_params, **{f: getattr(chart_params, f) for f in DEPLOYMENT_FIELDS},
                    coordinator=coordinator, include_coordinator=chart_params.include_coordinator)
    assert moved == chart_params
    compiled = build(day=chart.recorded_policy_day(chart.CHART_DIR)).compiled
    expected = trino.etc_files(moved, chart.TRINO_DATA, compiled.rules_json, compiled.group_file)

    rendered = render("minimal")
    files = _chart_files(rendered, f"-trino-{role}")
    if coordinator:
        files |= _chart_files(rendered, "-policy")
    assert files == expected


def test_local_and_chart_config_differ_only_in_deployment_properties(
        render: Callable[[str], Rendered], local_params: trino.TrinoParams) -> None:
    def props(text: str) -> dict[str, str]:
        return dict(line.split("=", 1) for line in text.splitlines())

    local = props(trino.config_properties(local_params))
    ours = props(_chart_files(render("minimal"), "-trino-coordinator")["config.properties"])
    assert set(local) - {"log.path"} == set(ours)
    differing = {k for k in ours if ours[k] != local[k]}
    # Addresses and paths only; authentication, authorisation and secrets are the same.
    assert differing <= {"discovery.uri", "http-server.http.port", "http-server.https.port",
                         "http-server.https.keystore.path", "http-server.authentication.jwt.key-file",
                         "http-server.authentication.jwt.required-issuer", "jwk.http-client.trust-store-path",
                         "access-control.config-files", "node-scheduler.include-coordinator",
                         "event-listener.config-files", "query.max-memory", "query.max-memory-per-node",
                         *(f"http-server.authentication.oauth2.{url}" for url in ("issuer", "auth-url", "token-url",
                                                                                  "jwks-url")),
                         "oauth2-jwk.http-client.trust-store-path"}, differing
    for key in ("http-server.authentication.type", "http-server.authentication.jwt.required-audience",
                "http-server.authentication.jwt.principal-field", "internal-communication.shared-secret",
                "http-server.authentication.oauth2.client-id", "http-server.authentication.oauth2.client-secret",
                "http-server.authentication.oauth2.principal-field", "http-server.authentication.oauth2.refresh-tokens",
                "http-server.authentication.oauth2.refresh-tokens.secret-key"):
        assert ours[key] == local[key]


def test_realm_equals_the_local_one_without_the_password_grant(render: Callable[[str], Rendered]) -> None:
    compiled = build(day=chart.recorded_policy_day(chart.CHART_DIR)).compiled
    groups, admins = compiled.groups, compiled.airflow_admins
    chart_realm = render("minimal").named("ConfigMap", "-keycloak-realm")["data"][f"{REALM}-realm.json"]
    assert chart_realm == realm_json(REALM, TRINO_AUDIENCE, groups, airflow_admins=admins, allow_password_grant=False)
    local = json.loads(realm_json(REALM, TRINO_AUDIENCE, groups, airflow_admins=admins, allow_password_grant=True))
    ours = json.loads(chart_realm)
    for client in local["clients"]:
        client["directAccessGrantsEnabled"] = False
    assert ours == local


def test_chart_paths_agree_with_the_templates(render: Callable[[str], Rendered]) -> None:
    spec = render("minimal").named("Deployment", "-trino-coordinator")["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["etc"] == chart.TRINO_ETC and mounts["data"] == chart.TRINO_DATA
    assert Path(chart.trino_params(coordinator=True).keystore_path).parent == Path(mounts["tls"])
    assert Path(chart.TRINO_CA).parent == Path(mounts["jwks-ca"])
    env = {e["name"] for e in spec["containers"][0]["env"]}
    referenced = set()
    for text in _chart_files(render("minimal"), "-trino-coordinator").values():
        referenced |= {part.split("}")[0] for part in text.split("${ENV:")[1:]}
    assert referenced <= env, f"referenced but not set: {sorted(referenced - env)}"


def test_query_memory_is_the_runtimes_locally_and_a_value_in_the_chart(
        render: Callable[[str], Rendered], local_params: trino.TrinoParams) -> None:
    local = trino.config_properties(local_params).splitlines()
    assert "query.max-memory=1GB" in local and "query.max-memory-per-node=512MB" in local
    for role in ("coordinator", "worker"):
        spec = render("minimal").named("Deployment", f"-trino-{role}")["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert (env[chart.ENV_QUERY_MAX_MEMORY], env[chart.ENV_QUERY_MAX_MEMORY_PER_NODE]) == ("4GB", "2GB")


# AirflowParams fields that say where things are, not what Airflow does: only these may differ.
AIRFLOW_DEPLOYMENT_FIELDS = ("home", "dags_folder", "api_host", "api_port", "api_url", "public_url", "keycloak_url",
                             "tls_cert", "tls_key", "ca_file", "keycloak_ca_file", "log_folder", "database_url")


def test_airflow_runs_the_local_configuration_moved_to_the_chart_places(
        render: Callable[[str], Rendered], tmp_path_factory: pytest.TempPathFactory) -> None:
    from santelake.render import airflow
    from santelake.runtime.services.airflow import Airflow

    layout = Layout(load_settings({"state_dir": tmp_path_factory.mktemp("airflow-state")}, env={}))
    local = Airflow(layout).params()
    ours = chart.airflow_params()
    assert replace(local, **{f: getattr(ours, f) for f in AIRFLOW_DEPLOYMENT_FIELDS}) == ours
    # The chart's file is the generator's output, byte for byte, and its pods run exactly it.
    generated = json.loads((chart.CHART_DIR / chart.GENERATED_DIR / chart.AIRFLOW_ENV_FILE).read_text())
    assert generated == airflow.environment(ours)
    assert set(airflow.environment(local)) == set(generated)
    spec = render("minimal").named("Deployment", "-airflow-scheduler")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert {name: env[name] for name in generated} == generated
    assert set(airflow.SECRETS) <= set(env) and set(airflow.SECRETS).isdisjoint(generated)
