"""Airflow's generated configuration: operators log in through Keycloak, no static password."""

from pathlib import Path

from santelake.config import load_settings
from santelake.names import AIRFLOW_CLIENT, REALM
from santelake.render import airflow
from santelake.render.keycloak import AIRFLOW_SECRET_ENV, AIRFLOW_URL_ENV
from santelake.runtime.layout import Layout
from santelake.runtime.services.airflow import Airflow
from santelake.runtime.services.keycloak import Keycloak

PARAMS = airflow.AirflowParams(
    home="/home", dags_folder="/dags", api_host="127.0.0.1", api_port=8080, api_url="https://internal:8080",
    public_url="https://airflow.example", keycloak_url="https://login.example", tls_cert="/tls/cert",
    tls_key="/tls/key", ca_file="/tls/ca", keycloak_ca_file="/keycloak/ca", log_folder="/logs",
    database_url="postgresql+psycopg://airflow@db/airflow",
)


def test_operators_log_in_through_keycloaks_airflow_client() -> None:
    env = airflow.environment(PARAMS)
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == airflow.AUTH_MANAGER
    assert env["AIRFLOW__KEYCLOAK_AUTH_MANAGER__SERVER_URL"] == "https://login.example"
    assert env["AIRFLOW__KEYCLOAK_AUTH_MANAGER__REALM"] == REALM
    assert env["AIRFLOW__KEYCLOAK_AUTH_MANAGER__CLIENT_ID"] == AIRFLOW_CLIENT
    # Keycloak sends the browser back to the public URL; tasks reach the API server inside.
    assert env["AIRFLOW__API__BASE_URL"] == "https://airflow.example"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "https://internal:8080/execution/"
    # requests (the auth manager's client) verifies Keycloak with Keycloak's CA.
    assert env["REQUESTS_CA_BUNDLE"] == "/keycloak/ca"


def test_no_static_login_and_no_secret_in_the_generated_configuration() -> None:
    env = airflow.environment(PARAMS)
    assert not [name for name in env if "SIMPLE_AUTH_MANAGER" in name or "PASSWORD" in name]
    assert airflow.CLIENT_SECRET not in env and not set(airflow.SECRETS) & set(env)


def test_locally_the_api_server_alone_holds_the_secret_keycloak_imports(tmp_path: Path) -> None:
    layout = Layout(load_settings({"state_dir": tmp_path}, env={}))
    local = Airflow(layout)
    holders = {spec.name: spec.env.get(airflow.CLIENT_SECRET) for spec in local.processes()}
    assert [name for name, secret in holders.items() if secret] == ["airflow-api-server"]
    (keycloak,) = Keycloak(layout).processes()
    assert keycloak.env[AIRFLOW_SECRET_ENV] == holders["airflow-api-server"]
    assert keycloak.env[AIRFLOW_URL_ENV] == local.params().public_url == layout.url("airflow")
    params = local.params()
    assert params.keycloak_url == layout.url("keycloak") and params.keycloak_ca_file == str(layout.tls.ca_cert)
