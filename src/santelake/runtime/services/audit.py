"""The audit receiver, locally: ``santelake audit serve`` on HTTPS (loopback), writing to the trail's
database as ``audit_writer`` and anchoring the head in the ``santelake-audit`` bucket.

Started after PostgreSQL and MinIO and before Trino, whose event listener posts to it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from santelake.audit.config import AuditSettings
from santelake.audit.store import READER, WRITER
from santelake.render.trino import POLICY_IDENTITY_FILE
from santelake.runtime.layout import Layout
from santelake.runtime.process import ProcessSpec
from santelake.runtime.services.base import Health, Service
from santelake.runtime.services.minio import Minio
from santelake.runtime.services.postgres import role_password_key

TOKEN_SECRET = "audit-receiver-token"
# The secret of Keycloak's santelake-audit client (runtime/services/keycloak.py makes the client).
KEYCLOAK_SECRET = "keycloak-audit-client-secret"
# How often the local receiver proves Trino's listener on (a cluster's default is 5 minutes).
LOCAL_CANARY_SECONDS = 30.0


def local_settings(layout: Layout, reader: bool = False) -> AuditSettings:
    """The local installation's audit settings: the receiver's (``audit_writer``), or compliance's reader's."""
    s = layout.settings
    role = READER if reader else WRITER
    access, secret = Minio(layout).credentials("audit")
    trino_etc = layout.service_dir("trino") / "etc"
    return AuditSettings(
        db_host=s.hostname, db_port=s.postgres_port, db_user=role,
        db_password=layout.secrets.get(role_password_key(role)), ca_file=layout.tls.ca_cert,
        s3_endpoint=f"{s.hostname}:{s.minio_port}", s3_access_key=access, s3_secret_key=secret,
        bind=s.bind_host, port=s.audit_port, tls_cert=layout.tls.server_cert, tls_key=layout.tls.server_key,
        token=layout.secrets.get(TOKEN_SECRET, length=48),
        rules_file=trino_etc / "rules.json", identity_file=trino_etc / POLICY_IDENTITY_FILE,
        keycloak_url=layout.url("keycloak"), keycloak_secret=layout.secrets.get(KEYCLOAK_SECRET),
        trino_url=layout.url("trino"), canary_interval=LOCAL_CANARY_SECONDS,
    )


def client_environment(layout: Layout) -> dict[str, str]:
    """What santelake's own audit client needs to reach the local receiver (``santelake.audit.client``)."""
    from santelake.audit.client import CA_FILE_ENV, TOKEN_FILE_ENV, URL_ENV

    return {URL_ENV: layout.url("audit"), TOKEN_FILE_ENV: str(layout.secrets.file(TOKEN_SECRET, length=48)),
            CA_FILE_ENV: str(layout.tls.ca_cert)}


class AuditReceiver(Service):
    name = "audit"
    port_keys = ("audit",)

    def prepare(self) -> None:
        self.layout.service_dir("audit").mkdir(parents=True, exist_ok=True)

    def processes(self) -> list[ProcessSpec]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SANTELAKE_AUDIT_")}
        env |= local_settings(self.layout).as_environment()
        command = [str(Path(sys.executable).parent / "santelake"), "audit", "serve"]
        return [self.spec(command, env, cwd=Path(self.layout.service_dir("audit")))]

    def health(self) -> Health:
        status, body = self.https_get(f"{self.url}/v1/health")
        if status != 200:
            return Health(False, f"HTTP {status}" if status else body.decode(errors="replace"))
        return Health(True, f"trail head at record {json.loads(body).get('head')}")
