"""Where everything of one local installation lives, under the state directory."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from santelake.config import Settings
from santelake.names import CATALOG_DATABASE, REALM
from santelake.runtime.secrets import SecretStore
from santelake.runtime.tls import TlsFiles, ensure_certificates
from santelake.settings import postgres_sqlalchemy_url


@dataclass(frozen=True)
class Layout:
    settings: Settings

    @property
    def root(self) -> Path:
        return self.settings.state_dir

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def opt(self) -> Path:
        """Unpacked distributions (Trino, Keycloak), made from the verified cache."""
        return self.root / "opt"

    def service_dir(self, name: str) -> Path:
        return self.root / name

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pid(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    @cached_property
    def secrets(self) -> SecretStore:
        return SecretStore(self.root / "secrets")

    @property
    def users_file(self) -> Path:
        """Dev users and their generated passwords (0600)."""
        return self.root / "secrets" / "dev-users.json"

    @cached_property
    def tls(self) -> TlsFiles:
        return ensure_certificates(self.root / "tls", [self.settings.hostname], ["127.0.0.1"])

    def url(self, service: str) -> str:
        host = self.settings.hostname
        ports = self.settings.ports()
        return f"https://{host}:{ports[service]}"

    @property
    def keycloak_issuer(self) -> str:
        return f"{self.url('keycloak')}/realms/{REALM}"

    @property
    def catalog_jdbc_url(self) -> str:
        s = self.settings
        return (
            f"jdbc:postgresql://{s.hostname}:{s.postgres_port}/{CATALOG_DATABASE}"
            f"?sslmode=verify-full&sslrootcert={self.tls.ca_cert}"
        )

    def postgres_sqlalchemy_url(self, role: str, password: str, database: str, driver: str = "psycopg2") -> str:
        s = self.settings
        return postgres_sqlalchemy_url(s.hostname, s.postgres_port, role, password, database, self.tls.ca_cert,
                                       driver)
