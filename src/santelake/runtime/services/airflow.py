"""Airflow: runs the ingestion DAGs. Scheduler, DAG processor and API server, locally.

Metadata in PostgreSQL over TLS; the API server on HTTPS (loopback), which task workers
verify with the platform CA; no example DAGs. Airflow 3.3 has no usage-data collection left
to switch off (its config has no such section); nothing else in it calls out.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path

from santelake.runtime.process import ProcessSpec, run_checked
from santelake.runtime.services.base import Health, Service
from santelake.runtime.services.postgres import role_password_key

REPO_DAGS = Path(__file__).resolve().parents[4] / "dags"


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


class Airflow(Service):
    name = "airflow"
    port_keys = ("airflow",)

    @property
    def home(self) -> Path:
        return self.layout.service_dir("airflow")

    @property
    def dags_folder(self) -> Path:
        return Path(os.environ.get("SANTELAKE_DAGS_DIR", REPO_DAGS))

    def environment(self) -> dict[str, str]:
        """The Airflow configuration, as the environment of every Airflow process and of dag.test()."""
        s = self.layout.settings
        tls = self.layout.tls
        password = self.layout.secrets.get(role_password_key("airflow"))
        return {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__FERNET_KEY": self.layout.secrets.get("airflow-fernet-key", generate=_fernet_key),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            # psycopg 3 serves both Airflow's sync and async engines, with libpq's TLS options.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.layout.postgres_sqlalchemy_url(
                "airflow", password, "airflow", driver="psycopg"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": self.layout.postgres_sqlalchemy_url(
                "airflow", password, "airflow", driver="psycopg"),
            "AIRFLOW__API__HOST": s.bind_host,
            "AIRFLOW__API__PORT": str(s.airflow_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SSL_CERT": str(tls.server_cert),
            "AIRFLOW__API__SSL_KEY": str(tls.server_key),
            "AIRFLOW__API__SSL_CA_FILE": str(tls.ca_cert),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API_AUTH__JWT_SECRET": self.layout.secrets.get("airflow-jwt-secret", length=48),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "GX_ANALYTICS_ENABLED": "false",
            "SANTELAKE_STATE_DIR": str(self.layout.root),
            "NO_PROXY": "localhost,127.0.0.1",
        }

    def process_env(self) -> dict[str, str]:
        """This process's environment without its own AIRFLOW_* settings, plus the stack's."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        return base | self.environment()

    @property
    def airflow_bin(self) -> str:
        return str(Path(sys.executable).parent / "airflow")

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        run_checked([self.airflow_bin, "db", "migrate"], "airflow db migrate", env=self.process_env(), timeout=900)

    def processes(self) -> list[ProcessSpec]:
        env = self.process_env()
        return [
            self.spec([self.airflow_bin, "dag-processor"], env, suffix="dag-processor"),
            # The worker log server binds every interface; logs are local files here anyway.
            self.spec([self.airflow_bin, "scheduler", "--skip-serve-logs"], env, suffix="scheduler"),
            self.spec([self.airflow_bin, "api-server"], env, suffix="api-server"),
        ]

    def health(self) -> Health:
        import json

        status, body = self.https_get(f"{self.url}/api/v2/monitor/health")
        if status != 200:
            return Health(False, f"api-server: HTTP {status}" if status else body.decode(errors="replace"))
        report = json.loads(body)
        unhealthy = [part for part, state in report.items()
                     if isinstance(state, dict) and state.get("status") not in ("healthy", None)]
        missing = [p for p in ("metadatabase", "scheduler", "dag_processor") if p not in report]
        if unhealthy or missing:
            return Health(False, f"not healthy yet: {', '.join(unhealthy + missing)}")
        return Health(True, "metadatabase, scheduler and dag-processor healthy")
