"""``santelake bootstrap``: what must exist before the platform's first query, made idempotently.

The Helm chart runs it in a hook Job after install and before each upgrade (``helm install``
returns only once it has succeeded). It creates the Iceberg JDBC catalog's tables (Trino never
creates them, and reads them in every query), the audit trail's database, table and roles (as a
database administrator: the trail must belong to no account santelake runs as) and, with bundled
MinIO, the buckets (the audit anchors' with object lock) and the ingest, trino and audit accounts
with their bucket policies. The functions are the local runtime's
(``santelake.lake.catalog``, ``santelake.runtime.services.minio``); only where the settings
come from differs: environment variables set by the chart, and secrets through the runtime's
``SANTELAKE_SECRET_<NAME>_FILE`` convention, as files mounted from the operator's Secrets.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from santelake.audit import store as audit_store
from santelake.errors import ConfigError, ServiceError
from santelake.locations import ENV_SCHEMAS_DIR
from santelake.names import CATALOG_ROLE
from santelake.runtime import secrets
from santelake.runtime.services.minio import (
    ACCOUNTS,
    AUDIT_ACCOUNT,
    Account,
    account_buckets,
    account_secret,
    audit_account,
)
from santelake.runtime.services.postgres import role_password_key
from santelake.settings import host_port, postgres_connect, postgres_sqlalchemy_url

# Settings, set by the chart as plain environment variables.
ENV_CATALOG_HOST = "SANTELAKE_CATALOG_DB_HOST"
ENV_CATALOG_PORT = "SANTELAKE_CATALOG_DB_PORT"
ENV_CATALOG_DATABASE = "SANTELAKE_CATALOG_DB_NAME"
ENV_CATALOG_USER = "SANTELAKE_CATALOG_DB_USER"
ENV_CA_FILE = "SANTELAKE_CA_FILE"
ENV_STORAGE = "SANTELAKE_BOOTSTRAP_STORAGE"
ENV_S3_ENDPOINT = "SANTELAKE_S3_ENDPOINT"
ENV_WAREHOUSE_BUCKET = "SANTELAKE_WAREHOUSE_BUCKET"
ENV_LANDING_BUCKET = "SANTELAKE_LANDING_BUCKET"
# The database administrator that makes the audit trail (the bundled server's superuser, or a role
# of an external server that may create roles and databases); on the catalog's server.
ENV_AUDIT_ADMIN_USER = "SANTELAKE_AUDIT_DB_ADMIN_USER"

# Storage the command provisions: bundled MinIO, or nothing (SeaweedFS takes its accounts from
# s3.json; an external store is the operator's).
STORAGE_MINIO = "minio"
STORAGE_NONE = "none"

# Secrets, by their names in the runtime's secret store (the local runtime uses the same ones).
SECRET_CATALOG_PASSWORD = role_password_key(CATALOG_ROLE)
SECRET_MINIO_ROOT_USER = "minio-root-user"
SECRET_MINIO_ROOT_PASSWORD = "minio-root-password"
SECRET_AUDIT_ADMIN_PASSWORD = "audit-db-admin-password"
AUDIT_ROLE_PASSWORDS = tuple(role_password_key(role) for role in (audit_store.WRITER, audit_store.READER))


ACCOUNT_NAMES = tuple(ACCOUNTS)


INGEST_KEYS = tuple(account_secret("ingest", part) for part in ("access-key", "secret-key"))


def secret_names(storage: str) -> list[str]:
    """Every secret the command reads for this storage kind (the ingest account's keys write the reference tables)."""
    names = [SECRET_CATALOG_PASSWORD, SECRET_AUDIT_ADMIN_PASSWORD, *AUDIT_ROLE_PASSWORDS]
    if storage == STORAGE_MINIO:
        names += [SECRET_MINIO_ROOT_USER, SECRET_MINIO_ROOT_PASSWORD]
        names += [account_secret(a, part) for a in (*ACCOUNT_NAMES, AUDIT_ACCOUNT)
                  for part in ("access-key", "secret-key")]
    else:
        names += list(INGEST_KEYS)
    return names


@dataclass(frozen=True)
class CatalogTarget:
    host: str
    port: int
    database: str
    user: str
    password: str
    ca_file: str

    @property
    def uri(self) -> str:
        return postgres_sqlalchemy_url(self.host, self.port, self.user, self.password, self.database, self.ca_file)


@dataclass(frozen=True)
class AuditTarget:
    """The audit trail's database: made as ``admin_user`` on the catalog's server, its roles' passwords."""

    admin_user: str
    admin_password: str
    passwords: Mapping[str, str]  # audit_writer's and audit_reader's


@dataclass(frozen=True)
class StorageTarget:
    endpoint: str  # host:port, TLS
    root_user: str
    root_password: str
    ca_file: str
    buckets: tuple[str, ...]
    accounts: tuple[Account, ...]


@dataclass(frozen=True)
class Plan:
    catalog: CatalogTarget
    audit: AuditTarget
    warehouse: str
    storage: StorageTarget | None
    s3_endpoint: str  # https://host:port
    ingest_keys: tuple[str, str]  # the ingest account's, which writes the reference tables


def plan_from_env(env: Mapping[str, str]) -> Plan:
    """What to create, from the environment; fails naming every missing variable at once."""
    storage = env.get(ENV_STORAGE, "")
    if storage not in (STORAGE_MINIO, STORAGE_NONE):
        raise ConfigError(f"{ENV_STORAGE} must be {STORAGE_MINIO!r} or {STORAGE_NONE!r}, not {storage!r}")
    wanted = [ENV_CATALOG_HOST, ENV_CATALOG_PORT, ENV_CATALOG_DATABASE, ENV_CATALOG_USER, ENV_CA_FILE,
              ENV_WAREHOUSE_BUCKET, ENV_S3_ENDPOINT, ENV_AUDIT_ADMIN_USER]
    if storage == STORAGE_MINIO:
        wanted += [ENV_LANDING_BUCKET]
    missing = [name for name in wanted if not env.get(name)]
    missing += [f"{secrets.env_name(name)}_FILE" for name in secret_names(storage)
                if secrets.provided(name, env) is None]
    if missing:
        raise ConfigError(f"santelake bootstrap: not set: {', '.join(missing)} (the Helm chart's bootstrap Job "
                          "sets them; see docs/operations.md)")

    def secret(name: str) -> str:
        value = secrets.provided(name, env)
        assert value is not None  # checked above
        return value

    try:
        port = int(env[ENV_CATALOG_PORT])
    except ValueError as exc:
        raise ConfigError(f"{ENV_CATALOG_PORT}: not a port number: {env[ENV_CATALOG_PORT]!r}") from exc
    ca_file = env[ENV_CA_FILE]
    catalog = CatalogTarget(env[ENV_CATALOG_HOST], port, env[ENV_CATALOG_DATABASE], env[ENV_CATALOG_USER],
                            secret(SECRET_CATALOG_PASSWORD), ca_file)
    audit = AuditTarget(env[ENV_AUDIT_ADMIN_USER], secret(SECRET_AUDIT_ADMIN_PASSWORD),
                        {role: secret(role_password_key(role)) for role in (audit_store.WRITER, audit_store.READER)})
    warehouse = env[ENV_WAREHOUSE_BUCKET]
    target = None
    if storage == STORAGE_MINIO:
        landing = env[ENV_LANDING_BUCKET]
        accounts = tuple(Account(name, secret(account_secret(name, "access-key")),
                                 secret(account_secret(name, "secret-key")), buckets)
                         for name, buckets in account_buckets(warehouse, landing).items())
        accounts += (audit_account(secret(account_secret(AUDIT_ACCOUNT, "access-key")),
                                   secret(account_secret(AUDIT_ACCOUNT, "secret-key"))),)
        target = StorageTarget(s3_host_port(env[ENV_S3_ENDPOINT]), secret(SECRET_MINIO_ROOT_USER),
                               secret(SECRET_MINIO_ROOT_PASSWORD), ca_file, (warehouse, landing), accounts)
    s3_endpoint = env[ENV_S3_ENDPOINT]
    s3_host_port(s3_endpoint)  # refuses anything but https
    return Plan(catalog, audit, warehouse, target, s3_endpoint.rstrip("/"),
                (secret(INGEST_KEYS[0]), secret(INGEST_KEYS[1])))


def s3_host_port(endpoint: str) -> str:
    """``host:port`` of an https:// endpoint; anything else is refused (TLS is not optional)."""
    try:
        return host_port(endpoint)
    except ValueError as exc:
        raise ConfigError(f"{ENV_S3_ENDPOINT}: {exc}") from exc


def create_catalog_tables(uri: str, warehouse_bucket: str) -> None:
    """The catalog's tables (``iceberg_tables``, ``iceberg_namespace_properties``), created if absent."""
    from santelake.lake.catalog import open_sql_catalog

    open_sql_catalog({"uri": uri, "warehouse": f"s3://{warehouse_bucket}"}).engine.dispose()


def provision_storage(target: StorageTarget) -> None:
    from santelake.lake.storage import s3_client
    from santelake.runtime.services.minio import admin_client, ensure_audit_bucket, provision

    client = s3_client(target.endpoint, target.root_user, target.root_password, target.ca_file)
    admin = admin_client(target.endpoint, target.root_user, target.root_password, target.ca_file)
    ensure_audit_bucket(client)
    provision(client, admin, target.buckets, target.accounts)


def install_audit_trail(catalog: CatalogTarget, audit: AuditTarget) -> None:
    """The trail's roles, database, table, trigger and views (``santelake.audit.store.install``), made as
    the database administrator over verified TLS."""
    def connect(database: str) -> Any:
        return postgres_connect(catalog.host, catalog.port, audit.admin_user, audit.admin_password, database,
                                catalog.ca_file, application_name="santelake-bootstrap")

    audit_store.install(connect, dict(audit.passwords))


def _unreachable() -> tuple[type[BaseException], ...]:
    """Errors that mean "not up yet": a server starting with the release is retried, nothing else."""
    import psycopg2
    import sqlalchemy.exc
    import urllib3.exceptions

    return OSError, sqlalchemy.exc.OperationalError, psycopg2.OperationalError, urllib3.exceptions.HTTPError


T = TypeVar("T")


def wait_for(step: Callable[[], T], what: str, timeout: float, retry_on: tuple[type[BaseException], ...],
             *, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> T:
    """``step()``, retried every few seconds while ``what`` is unreachable, for at most ``timeout`` s."""
    deadline = clock() + timeout
    delay = 1.0
    while True:
        try:
            return step()
        except retry_on as exc:
            if clock() + delay > deadline:
                raise ServiceError(f"{what} did not answer within {timeout:.0f}s: {exc}") from exc
            sleep(delay)
            delay = min(delay * 2, 10.0)


def bootstrap(plan: Plan, timeout: float, log: Callable[[str], None] = print) -> None:
    retry_on = _unreachable()
    c = plan.catalog
    wait_for(lambda: create_catalog_tables(c.uri, plan.warehouse),
             f"the catalog database ({c.host}:{c.port}/{c.database})", timeout, retry_on)
    log(f"catalog tables present in {c.database} on {c.host}:{c.port}")
    wait_for(lambda: install_audit_trail(c, plan.audit), f"the audit trail's database ({c.host}:{c.port})",
             timeout, retry_on)
    log(f"audit trail present in {audit_store.DATABASE} on {c.host}:{c.port}")
    if plan.storage is not None:
        storage = plan.storage
        wait_for(lambda: provision_storage(storage), f"MinIO ({storage.endpoint})", timeout, retry_on)
        log(f"buckets {', '.join(storage.buckets)} and accounts "
            f"{', '.join(a.name for a in storage.accounts)} present in MinIO at {storage.endpoint}")
    names = create_reference_tables(plan)
    log(f"reference tables {', '.join(names)} up to date")


def create_reference_tables(plan: Plan) -> list[str]:
    """The platform's reference tables (``lake.reference``), written as the ingest account."""
    from santelake.ingest.runner import schemas
    from santelake.lake.catalog import lake_properties, open_sql_catalog
    from santelake.lake.reference import ensure_reference_tables

    c = plan.catalog
    catalog = open_sql_catalog(lake_properties(c.uri, plan.warehouse, plan.s3_endpoint, *plan.ingest_keys,
                                               c.ca_file))
    try:
        return ensure_reference_tables(catalog, schemas())
    finally:
        catalog.engine.dispose()


def cmd_bootstrap(args: argparse.Namespace) -> int:
    import os

    bootstrap(plan_from_env(os.environ), args.timeout)
    return 0


def register(subparsers: Any) -> None:
    command = subparsers.add_parser(
        "bootstrap", help="create the catalog tables, the audit trail's database, with bundled MinIO its "
                          "buckets and accounts, and the reference tables "
                          "(the Helm chart's bootstrap Job; settings from the environment)")
    command.add_argument("--timeout", type=float, default=300,
                         help="seconds to wait for the database and MinIO to answer (default 300)")
    command.set_defaults(func=cmd_bootstrap)


def env_names() -> dict[str, str]:
    """The settings' variables, for the chart's contract.json."""
    return {
        "catalogHost": ENV_CATALOG_HOST, "catalogPort": ENV_CATALOG_PORT, "catalogDatabase": ENV_CATALOG_DATABASE,
        "catalogUser": ENV_CATALOG_USER, "caFile": ENV_CA_FILE, "storage": ENV_STORAGE,
        "s3Endpoint": ENV_S3_ENDPOINT, "warehouseBucket": ENV_WAREHOUSE_BUCKET, "landingBucket": ENV_LANDING_BUCKET,
        "schemasDir": ENV_SCHEMAS_DIR, "auditAdminUser": ENV_AUDIT_ADMIN_USER,
    }
