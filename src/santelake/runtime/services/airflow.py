"""Airflow: runs the ingestion DAGs. Scheduler, DAG processor and API server, locally.

Metadata in PostgreSQL over TLS; the API server on HTTPS (loopback), which task workers
verify with the platform CA; no example DAGs. Operators log in through the local Keycloak
(the API server alone holds the client's secret). Airflow 3.3 has no usage-data collection
left to switch off (its config has no such section); nothing else in it calls out but to Keycloak.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from santelake.render import airflow as render
from santelake.runtime.platform import platform_settings
from santelake.runtime.process import ProcessSpec, run_checked
from santelake.runtime.services.base import Health, Service
from santelake.runtime.services.postgres import role_password_key

REPO_DAGS = Path(__file__).resolve().parents[4] / "dags"


class Airflow(Service):
    name = "airflow"
    port_keys = ("airflow",)

    @property
    def home(self) -> Path:
        return self.layout.service_dir("airflow")

    @property
    def dags_folder(self) -> Path:
        return Path(os.environ.get("SANTELAKE_DAGS_DIR", REPO_DAGS))

    def params(self) -> render.AirflowParams:
        s = self.layout.settings
        tls = self.layout.tls
        password = self.layout.secrets.get(role_password_key("airflow"))
        return render.AirflowParams(
            home=str(self.home), dags_folder=str(self.dags_folder), api_host=s.bind_host, api_port=s.airflow_port,
            api_url=self.url, public_url=self.url, keycloak_url=self.layout.url("keycloak"),
            tls_cert=str(tls.server_cert), tls_key=str(tls.server_key), ca_file=str(tls.ca_cert),
            keycloak_ca_file=str(tls.ca_cert), log_folder=str(self.home / "logs"),
            database_url=self.layout.postgres_sqlalchemy_url("airflow", password, "airflow", driver="psycopg"),
        )

    def client_secret(self) -> str:
        """The secret of Keycloak's airflow client, generated once; Keycloak imports the same (keycloak.py)."""
        return self.layout.secrets.get(render.CLIENT_SECRET_NAME)

    def environment(self) -> dict[str, str]:
        """The Airflow configuration and the platform settings, as the environment of every Airflow process."""
        generated = {name: self.layout.secrets.get(f"airflow-{key}", generate=render.new_secret)
                     for name, key in render.SECRETS.items()}
        from santelake.audit.client import ACTOR_ENV
        from santelake.runtime.services.audit import client_environment

        return (render.environment(self.params()) | generated | {"NO_PROXY": "localhost,127.0.0.1"}
                | platform_settings(self.layout).as_environment() | client_environment(self.layout)
                | {ACTOR_ENV: "airflow"})

    def process_env(self) -> dict[str, str]:
        """This process's environment without its own AIRFLOW_* and SANTELAKE_* settings, plus the stack's."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SANTELAKE_"))}
        return base | self.environment()

    @property
    def airflow_bin(self) -> str:
        return str(Path(sys.executable).parent / "airflow")

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        run_checked([self.airflow_bin, "db", "migrate"], "airflow db migrate", env=self.process_env(), timeout=900)

    def processes(self) -> list[ProcessSpec]:
        env = self.process_env()
        # Each is started again when it exits on its own: the scheduler and the dag-processor end
        # when their database is away for a moment (runtime/keepalive.py; the kubelet's job on a cluster).
        return [
            self.spec([self.airflow_bin, "dag-processor"], env, suffix="dag-processor", restart=True),
            # The worker log server binds every interface; logs are local files here anyway.
            self.spec([self.airflow_bin, "scheduler", "--skip-serve-logs"], env, suffix="scheduler", restart=True),
            self.spec([self.airflow_bin, "api-server"], env | {render.CLIENT_SECRET: self.client_secret()},
                      suffix="api-server", restart=True),
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
