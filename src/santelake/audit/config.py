"""Where the audit trail lives and how its parts reach each other: one set of settings, read from the
environment (a pod, or the process the local stack starts), or made from the local installation."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from santelake.errors import ConfigError

AUDIT_BUCKET = "santelake-audit"
# How long records are kept (santelake audit purge) and anchors locked: three years, the longest the
# CNIL's recommendation on logging (deliberation 2021-122) accepts for logs kept for internal control
# where misuse would harm the people concerned, which is the case of access to health data
# (docs/compliance.md, "Retention").
RETENTION_DAYS = 3 * 365
# The environment variable of each setting.
ENV = {
    "bind": "SANTELAKE_AUDIT_BIND",
    "port": "SANTELAKE_AUDIT_PORT",
    "tls_cert": "SANTELAKE_AUDIT_TLS_CERT",
    "tls_key": "SANTELAKE_AUDIT_TLS_KEY",
    "ca_file": "SANTELAKE_AUDIT_CA_FILE",
    "token": "SANTELAKE_AUDIT_TOKEN",
    "db_host": "SANTELAKE_AUDIT_DB_HOST",
    "db_port": "SANTELAKE_AUDIT_DB_PORT",
    "db_user": "SANTELAKE_AUDIT_DB_USER",
    "db_password": "SANTELAKE_AUDIT_DB_PASSWORD",
    "db_name": "SANTELAKE_AUDIT_DB_NAME",
    "s3_endpoint": "SANTELAKE_AUDIT_S3_ENDPOINT",
    "s3_access_key": "SANTELAKE_AUDIT_S3_ACCESS_KEY",
    "s3_secret_key": "SANTELAKE_AUDIT_S3_SECRET_KEY",
    "rules_file": "SANTELAKE_AUDIT_RULES_FILE",
    "identity_file": "SANTELAKE_AUDIT_POLICY_IDENTITY_FILE",
    "anchor_interval": "SANTELAKE_AUDIT_ANCHOR_INTERVAL",
    "keycloak_url": "SANTELAKE_AUDIT_KEYCLOAK_URL",
    "keycloak_secret": "SANTELAKE_AUDIT_KEYCLOAK_SECRET",
    "trino_url": "SANTELAKE_AUDIT_TRINO_URL",
    "canary_interval": "SANTELAKE_AUDIT_CANARY_INTERVAL",
}
OPTIONAL = {"db_name", "rules_file", "identity_file", "anchor_interval", "token", "tls_cert", "tls_key", "bind", "port",
            "keycloak_url", "keycloak_secret", "trino_url", "canary_interval",
            # Not needed by the chart's retention job, which touches the records only; s3() says when missing.
            "s3_endpoint", "s3_access_key", "s3_secret_key"}


@dataclass(frozen=True)
class AuditSettings:
    db_host: str
    db_port: int
    db_user: str
    db_password: str
    ca_file: Path
    s3_endpoint: str = ""  # host:port, TLS verified with ca_file
    s3_access_key: str = ""
    s3_secret_key: str = ""
    db_name: str = "santelake_audit"
    bind: str = "127.0.0.1"
    port: int = 18445
    tls_cert: Path | None = None
    tls_key: Path | None = None
    token: str = ""
    rules_file: Path | None = None
    identity_file: Path | None = None
    anchor_interval: float = 60.0
    # Keycloak's base URL and the audit client's secret: without them, no login is copied in.
    keycloak_url: str = ""
    keycloak_secret: str = ""
    # Trino's URL, for the canary query that proves the listener on (needs the Keycloak client too).
    trino_url: str = ""
    canary_interval: float = 300.0

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> AuditSettings:
        env = os.environ if env is None else env
        missing = [ENV[name] for name in ENV if name not in OPTIONAL and not env.get(ENV[name])]
        if missing:
            raise ConfigError(f"the audit trail's settings are missing from the environment: {', '.join(missing)}")
        values: dict[str, Any] = {}
        for item in fields(cls):
            raw = env.get(ENV[item.name])
            if not raw:
                continue
            try:
                values[item.name] = (int(raw) if item.type == "int" else float(raw) if item.type == "float"
                                     else Path(raw) if "Path" in str(item.type) else raw)
            except ValueError as exc:
                raise ConfigError(f"{ENV[item.name]}={raw!r}: not a number") from exc
        return cls(**values)

    def as_environment(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None and value != "":
                out[ENV[item.name]] = str(value)
        return out

    def connect(self) -> Any:
        """A connection to the trail's database, TLS verified."""
        from santelake.settings import postgres_connect

        return postgres_connect(self.db_host, self.db_port, self.db_user, self.db_password, self.db_name,
                                self.ca_file, timeout=5, application_name="santelake-audit")

    def s3(self) -> Any:
        """The anchors' object store, as the receiver's account."""
        from santelake.lake.storage import s3_client

        if not (self.s3_endpoint and self.s3_access_key and self.s3_secret_key):
            names = ", ".join(ENV[n] for n in ("s3_endpoint", "s3_access_key", "s3_secret_key"))
            raise ConfigError(f"the audit trail's anchors need {names} in the environment")

        return s3_client(self.s3_endpoint, self.s3_access_key, self.s3_secret_key, self.ca_file)
