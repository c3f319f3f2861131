"""The settings of everything that runs in a pod (or an Airflow task), read from the environment.

One typed model, ``PlatformSettings``: where the catalog, the object store, Keycloak and
Trino are, which CA verifies them, which buckets hold landed extracts and the lake, where
the key chain, the schemas and the policies are, and where compiled policies go. Every
field is one variable, ``SANTELAKE_<FIELD>`` (the table in docs/architecture.md). Secrets
are never values in the environment: each is a file (``..._FILE``), a mounted Secret in a
cluster and a 0600 file of the state folder locally.

The Helm chart sets these variables in the Airflow pods; the local runtime builds the same
model from its state folder (``santelake.runtime.platform.platform_settings``) and hands it to its
Airflow processes as the same variables (``as_environment``). Code that reads this model
reads nothing else: no local state, no generated secret or CA, no ``localhost``.

A missing or malformed variable fails at start (``from_environment``), naming each variable
at fault and what it expects, all at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from santelake.errors import ConfigError
from santelake.names import CATALOG_DATABASE, CATALOG_ROLE, LANDING_BUCKET, REALM, WAREHOUSE_BUCKET

ENV_PREFIX = "SANTELAKE_"
POLICY_TARGET_FILE = "file"
KEY_CACHE_BYTES = 2 << 30  # about 270M rows' key hashes
POLICY_TARGET_CONFIGMAP = "configmap"


def _https_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("an https:// URL with a host (TLS is always on)")
    return value.rstrip("/")


def host_port(url: str) -> str:
    """``host:port`` of an https:// URL (443 when it names none), as S3 clients take an endpoint."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{url!r} is not an https:// URL with a host")
    return f"{parts.hostname}:{parts.port or 443}"


def _existing(kind: str, exists: Callable[[Path], bool]) -> Callable[[Path], Path]:
    def check(value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("an absolute path")
        if not exists(value):
            raise ValueError(f"the path of an existing {kind}")
        return value

    return check


def _policy_target(value: str) -> str:
    kind, _, where = value.partition(":")
    if kind == POLICY_TARGET_FILE and where.startswith("/"):
        return value
    if kind == POLICY_TARGET_CONFIGMAP and where.count("/") == 1 and all(where.split("/")):
        return value
    raise ValueError("file:/<absolute folder> or configmap:<namespace>/<name>")


HttpsUrl = Annotated[str, AfterValidator(_https_url)]
ExistingFile = Annotated[Path, AfterValidator(_existing("file", Path.is_file))]
ExistingDirectory = Annotated[Path, AfterValidator(_existing("directory", Path.is_dir))]
PolicyTarget = Annotated[str, AfterValidator(_policy_target)]


class PlatformSettings(BaseModel):
    """Where everything a task needs is; each field is the variable ``SANTELAKE_<FIELD>``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    catalog_host: str = Field(min_length=1, description="host name of the PostgreSQL server holding the catalog")
    catalog_port: int = Field(ge=1, le=65535, description="its port")
    catalog_database: str = Field(CATALOG_DATABASE, min_length=1, description="the catalog's database")
    catalog_user: str = Field(CATALOG_ROLE, min_length=1, description="the catalog's role")
    catalog_password_file: ExistingFile = Field(description="a file holding that role's password")
    s3_endpoint: HttpsUrl = Field(description="the object store's S3 endpoint, https://host:port")
    s3_access_key_file: ExistingFile = Field(description="a file holding the ingest account's access key")
    s3_secret_key_file: ExistingFile = Field(description="a file holding the ingest account's secret key")
    ca_file: ExistingFile = Field(description="the CA bundle that verifies PostgreSQL, S3, Keycloak and Trino")
    warehouse_bucket: str = Field(WAREHOUSE_BUCKET, min_length=3, description="the bucket of the Iceberg tables")
    landing_bucket: str = Field(LANDING_BUCKET, min_length=3, description="the bucket extracts land in")
    landing_keep_loaded_days: int = Field(
        0, ge=0, description="days a loaded extract stays in the landing bucket (0: deleted once loaded)")
    landing_keep_rejected_days: int = Field(
        30, ge=0, description="days a rejected extract stays in the landing bucket for review")
    pseudonym_key_file: ExistingFile = Field(description="the pseudonymisation key chain, one hex key a line")
    schemas_dir: ExistingDirectory = Field(description="the iceberg_schemas/ folder")
    policies_dir: ExistingDirectory = Field(description="the policies/ folder")
    work_dir: Path = Field(description="a writable folder for downloads, spills and Data Docs")
    key_cache_bytes: int = Field(
        KEY_CACHE_BYTES, ge=0, description="bytes of the work folder a loader may keep the tables' key index in, "
                                           "decoded (8 a loaded row; 0: read it from the object store at every load)")
    keycloak_url: HttpsUrl = Field(description="Keycloak's base URL, https://host:port")
    keycloak_admin_user: str = Field(min_length=1, description="a Keycloak administrator of the master realm")
    keycloak_admin_password_file: ExistingFile = Field(description="a file holding that administrator's password")
    trino_url: HttpsUrl = Field(description="Trino's URL, https://host:port")
    policy_target: PolicyTarget = Field(
        description="where compiled rules go for Trino: file:<folder> or configmap:<namespace>/<name>")
    catalogue_target: PolicyTarget | None = Field(
        default=None, description="where the catalogue's public view is published (the chart's ConfigMap its "
                                  "server mounts): configmap:<namespace>/<name>, or none (the local stack's "
                                  "catalogue server builds its own)")

    @property
    def keycloak_issuer(self) -> str:
        return f"{self.keycloak_url}/realms/{REALM}"

    @property
    def s3_host(self) -> str:
        """The S3 endpoint as host:port, as S3 clients take it."""
        return host_port(self.s3_endpoint)

    def secret(self, field: str) -> str:
        """The secret held by the file named in ``field`` (a ``..._file`` field), stripped; never empty."""
        path: Path = getattr(self, field)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{env_name(field)}={path}: cannot read the secret: {exc.strerror}") from exc
        if not value:
            raise ConfigError(f"{env_name(field)}={path}: the file is empty; it must hold the secret")
        return value

    def as_environment(self) -> dict[str, str]:
        """The variables that give this model back through ``from_environment``."""
        return {env_name(name): str(value) for name, value in self.model_dump().items() if value is not None}

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> PlatformSettings:
        """The model from ``SANTELAKE_*`` variables; a ConfigError names every variable at fault."""
        env = os.environ if env is None else env
        values = {name: env[env_name(name)] for name in cls.model_fields if env_name(name) in env}
        return _validated(values, "environment variable")

    @classmethod
    def of(cls, **values: Any) -> PlatformSettings:
        """The model from values (the local runtime's); errors name the variables all the same."""
        return _validated(values, "setting")


def postgres_sqlalchemy_url(host: str, port: int, role: str, password: str, database: str, ca_file: Path | str,
                            driver: str = "psycopg2") -> str:
    """A SQLAlchemy URL to PostgreSQL over TLS verified against ``ca_file`` (local runtime and chart)."""
    return (
        f"postgresql+{driver}://{quote(role, safe='')}:{quote(password, safe='')}@{host}:{port}/{database}"
        f"?sslmode=verify-full&sslrootcert={ca_file}"
    )


def postgres_connect(host: str, port: int, role: str, password: str, database: str, ca_file: Path | str, *,
                     timeout: int = 10, application_name: str = "santelake") -> Any:
    """A psycopg2 connection to PostgreSQL over TLS verified against ``ca_file`` (local runtime and chart)."""
    import psycopg2

    return psycopg2.connect(host=host, port=port, dbname=database, user=role, password=password,
                            sslmode="verify-full", sslrootcert=str(ca_file), connect_timeout=timeout,
                            application_name=application_name)


def env_name(field: str) -> str:
    """The variable of a field."""
    return ENV_PREFIX + field.upper()


def variables() -> dict[str, str]:
    """Every variable of the model, with what it expects."""
    return {env_name(name): info.description or "" for name, info in PlatformSettings.model_fields.items()}


def _validated(values: Mapping[str, Any], what: str) -> PlatformSettings:
    try:
        return PlatformSettings(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            info = PlatformSettings.model_fields.get(field)
            expects = f" ({info.description})" if info and info.description else ""
            if error["type"] == "missing":
                problems.append(f"{env_name(field)}: not set; expected {expects.strip(' ()')}")
                continue
            given = values.get(field)
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{env_name(field)}={given!s}: expected {message}{expects}")
        raise ConfigError(f"invalid platform settings ({what}s):\n  - " + "\n  - ".join(problems)) from None
