"""Airflow's configuration, as the environment of its processes: one generator for the local
runtime and the chart.

Airflow reads ``AIRFLOW__<SECTION>__<KEY>`` variables. ``environment`` gives every one that
santelake sets; what differs between installations (paths, addresses, the database) comes
in through ``AirflowParams``, and the chart's parameters are ``$(VAR)`` references that
Kubernetes expands from variables its templates set first. Airflow's own secrets (``SECRETS``,
and the Keycloak client's secret, ``CLIENT_SECRET``) are never in the generated file: the
local runtime passes its generated ones, the chart takes them from the operator's Secrets. A
test holds the two outputs to differ only where a deployment must
(``tests/unit/helm/test_parity.py``).

Operators log in through Keycloak: Airflow's Keycloak auth manager (PyPI
``apache-airflow-providers-keycloak``) sends the browser to Keycloak (authorization code flow)
and asks Keycloak's authorisation services whether the user may do each thing; the realm's
``airflow`` client answers yes for the platform admins' group only (``render.keycloak``). Its
calls to Keycloak go through ``requests``, which verifies Keycloak's certificate against
``REQUESTS_CA_BUNDLE``: Keycloak's CA (the platform CA unless the chart's keycloak.tls names
another certificate).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from santelake.names import AIRFLOW_CLIENT, REALM

# The Keycloak client's secret, which the API server alone reads: its variable, its key in the
# chart's Secret (secrets.airflowClient) and its name in the local secret store. Keycloak takes
# the same secret at realm import (render.keycloak.AIRFLOW_SECRET_ENV).
CLIENT_SECRET = "AIRFLOW__KEYCLOAK_AUTH_MANAGER__CLIENT_SECRET"
CLIENT_SECRET_KEY = "client-secret"
CLIENT_SECRET_NAME = "airflow-client-secret"
AUTH_MANAGER = "airflow.providers.keycloak.auth_manager.keycloak_auth_manager.KeycloakAuthManager"

# Airflow's secrets: variable -> key in the chart's Secret (secrets.airflow) and name in the local secret store.
SECRETS = {
    "AIRFLOW__CORE__FERNET_KEY": "fernet-key",
    "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-secret",
    "AIRFLOW__API__SECRET_KEY": "api-secret-key",
}


def new_secret() -> str:
    """A value for any of Airflow's secrets: 32 random bytes as URL-safe base64, which is also the
    form of a Fernet key (so one maker serves the fernet key, the JWT secret and the API key)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class AirflowParams:
    home: str
    dags_folder: str
    api_host: str  # where the API server binds
    api_port: int
    api_url: str  # https://host:port, where Airflow's own processes reach it (the execution API)
    public_url: str  # https://host[:port], where operators' browsers reach it, and Keycloak sends them back
    keycloak_url: str  # https://host[:port], Keycloak as browsers and the API server reach it (the issuer's base)
    tls_cert: str
    tls_key: str
    ca_file: str
    keycloak_ca_file: str  # the CA of Keycloak's certificate
    log_folder: str
    database_url: str  # SQLAlchemy URL of Airflow's database, TLS verified
    parallelism: int = 4


def environment(p: AirflowParams) -> dict[str, str]:
    """Every Airflow setting santelake makes, secrets excepted, by variable."""
    return {
        "AIRFLOW_HOME": p.home,
        "AIRFLOW__CORE__DAGS_FOLDER": p.dags_folder,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(p.parallelism),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{p.api_url}/execution/",
        "AIRFLOW__CORE__AUTH_MANAGER": AUTH_MANAGER,
        "AIRFLOW__KEYCLOAK_AUTH_MANAGER__SERVER_URL": p.keycloak_url,
        "AIRFLOW__KEYCLOAK_AUTH_MANAGER__REALM": REALM,
        "AIRFLOW__KEYCLOAK_AUTH_MANAGER__CLIENT_ID": AIRFLOW_CLIENT,
        "REQUESTS_CA_BUNDLE": p.keycloak_ca_file,
        # psycopg 3 serves both Airflow's sync and async engines, with libpq's TLS options.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": p.database_url,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": p.database_url,
        "AIRFLOW__API__HOST": p.api_host,
        "AIRFLOW__API__PORT": str(p.api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": p.public_url,
        "AIRFLOW__API__SSL_CERT": p.tls_cert,
        "AIRFLOW__API__SSL_KEY": p.tls_key,
        "AIRFLOW__API__SSL_CA_FILE": p.ca_file,
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        # A task whose worker died with its scheduler pod (LocalExecutor) is failed and retried
        # after a minute of silence, not five: until then max_active_runs=1 holds every load back
        # (measured on the cluster, tests/cluster/test_day2.py). Workers heartbeat every 5 s.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": p.log_folder,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "GX_ANALYTICS_ENABLED": "false",
    }
