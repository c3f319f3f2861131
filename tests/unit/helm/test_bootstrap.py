"""`santelake bootstrap` and the chart's hook Job that runs it: everything short of the servers.

Creating buckets and accounts in MinIO is `santelake.runtime.services.minio.provision`, the
function the local runtime runs at every `santelake up`: the integration tests exercise it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from santelake.errors import ConfigError, ServiceError
from santelake.names import LANDING_BUCKET, WAREHOUSE_BUCKET
from santelake.render import bootstrap
from santelake.render import helm as chart
from santelake.runtime import secrets
from santelake.runtime.services.minio import ACCOUNTS, account_buckets
from tests.unit.helm.conftest import Rendered

Render = Callable[[str], Rendered]


def _job(rendered: Rendered) -> dict[str, Any]:
    return rendered.named("Job", "-bootstrap")


def _container(rendered: Rendered) -> dict[str, Any]:
    containers = _job(rendered)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_the_job_is_a_hook_and_the_airflow_migration_is_not(render: Render) -> None:
    rendered = render("minimal")
    annotations = _job(rendered)["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "post-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    # The Airflow pods wait for the migration: as a post-install hook it would run only after
    # helm install --wait saw them ready, which they never are without it.
    migrate = rendered.named("Job", "-airflow-migrate-1")
    assert "helm.sh/hook" not in migrate["metadata"].get("annotations", {})
    assert migrate["spec"]["ttlSecondsAfterFinished"] > 0


def test_the_job_calls_the_package_command(render: Render) -> None:
    container = _container(render("minimal"))
    assert container["command"] == ["santelake", "bootstrap"]
    assert container["image"] == chart.images(chart.load_values(chart.CHART_DIR, [
        chart.CHART_DIR / "ci" / "minimal-values.yaml"]))[0].reference


def _mounted_files(rendered: Rendered) -> dict[str, tuple[str, str]]:
    """Path in the container -> (Secret, key) of every file projected from a Secret."""
    spec = _job(rendered)["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in _container(rendered)["volumeMounts"]}
    files = {}
    for volume in spec["volumes"]:
        sources = [s["secret"] for s in volume.get("projected", {}).get("sources", [])]
        if "secret" in volume:
            sources.append({"name": volume["secret"]["secretName"], "items": volume["secret"]["items"]})
        for source in sources:
            for item in source["items"]:
                files[f"{mounts[volume['name']]}/{item['path']}"] = (source["name"], item["key"])
    return files


@pytest.mark.parametrize(("scenario", "provisions_minio"),
                         [("minimal", True), ("production", False), ("seaweedfs", False)])
def test_the_job_gives_the_command_all_it_needs_and_secrets_only_as_files(
        render: Render, tmp_path: Path, scenario: str, provisions_minio: bool) -> None:
    rendered = render(scenario)
    container = _container(rendered)
    assert all("valueFrom" not in e for e in container["env"]), "secrets come as mounted files, not variables"
    files = _mounted_files(rendered)
    env: dict[str, str] = {}
    for variable in container["env"]:
        name, value = variable["name"], variable["value"]
        if name.startswith("SANTELAKE_SECRET_"):
            assert name.endswith("_FILE") and value in files, f"{name}: {value} is not a mounted Secret file"
            # The pod's file, with a stand-in value.
            local = tmp_path / Path(value).name
            local.write_text(f"value-of-{files[value][1]}\n")
            value = str(local)
        env[name] = value
    assert env[bootstrap.ENV_CA_FILE] in files and files[env[bootstrap.ENV_CA_FILE]][1] == "ca.crt"

    plan = bootstrap.plan_from_env(env)
    assert plan.catalog.database == "santelake_catalog" and plan.catalog.user == "iceberg_catalog"
    assert plan.catalog.password == "value-of-password"
    assert plan.warehouse == "santelake-warehouse"
    # The trail is made as the database administrator, its two roles get their passwords.
    assert (plan.audit.admin_user, plan.audit.admin_password) == (
        ("santelake_admin", "value-of-password") if scenario == "production" else ("postgres", "value-of-password"))
    assert dict(plan.audit.passwords) == {"audit_writer": "value-of-writer-password",
                                          "audit_reader": "value-of-reader-password"}
    assert (plan.storage is not None) == provisions_minio
    if plan.storage is not None:
        assert plan.storage.endpoint == "santelake-minio:9000"
        assert (plan.storage.root_user, plan.storage.root_password) == ("value-of-root-user", "value-of-root-password")
        assert {a.name: a.buckets for a in plan.storage.accounts} == account_buckets(
            "santelake-warehouse", "santelake-landing") | {"audit": ("santelake-audit",)}
        assert {a.access_key for a in plan.storage.accounts} == {"value-of-access-key"}
        # The audit account may write anchors and delete nothing.
        audit = next(a for a in plan.storage.accounts if a.name == "audit")
        assert audit.policy is not None and "s3:DeleteObject" not in json.dumps(audit.policy)


def test_the_job_reads_each_secret_from_its_values_secret(render: Render) -> None:
    files = _mounted_files(render("minimal"))
    by_name = {Path(path).name: source for path, source in files.items()}
    assert by_name[bootstrap.SECRET_CATALOG_PASSWORD] == ("santelake-db-catalog", "password")
    assert by_name[bootstrap.SECRET_MINIO_ROOT_PASSWORD] == ("santelake-minio-root", "root-password")
    assert by_name[bootstrap.account_secret("trino", "secret-key")] == ("santelake-s3-trino", "secret-key")
    assert by_name[bootstrap.account_secret("ingest", "access-key")] == ("santelake-s3-ingest", "access-key")
    assert by_name[bootstrap.account_secret("audit", "secret-key")] == ("santelake-s3-audit", "secret-key")
    # The bundled server's superuser makes the trail; its roles' passwords are secrets.audit's.
    assert by_name[bootstrap.SECRET_AUDIT_ADMIN_PASSWORD] == ("santelake-db-superuser", "password")
    assert by_name["postgres-audit_writer-password"] == ("santelake-audit", "writer-password")
    assert by_name["postgres-audit_reader-password"] == ("santelake-audit", "reader-password")


def _env(tmp_path: Path, storage: str = "minio", **changes: str) -> dict[str, str]:
    env = {
        bootstrap.ENV_STORAGE: storage, bootstrap.ENV_CATALOG_HOST: "pg", bootstrap.ENV_CATALOG_PORT: "5432",
        bootstrap.ENV_CATALOG_DATABASE: "santelake_catalog", bootstrap.ENV_CATALOG_USER: "iceberg_catalog",
        bootstrap.ENV_CA_FILE: "/ca.crt", bootstrap.ENV_WAREHOUSE_BUCKET: "wh", bootstrap.ENV_LANDING_BUCKET: "ld",
        bootstrap.ENV_S3_ENDPOINT: "https://minio:9000", bootstrap.ENV_AUDIT_ADMIN_USER: "postgres",
    }
    for name in bootstrap.secret_names(storage):
        path = tmp_path / name
        path.write_text(f"{name}-value\n")
        env[f"{secrets.env_name(name)}_FILE"] = str(path)
    env.update(changes)
    return {k: v for k, v in env.items() if v != ""}


def test_catalog_uri_verifies_tls_and_quotes_the_password(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("p@ss/w:rd?\n")
    plan = bootstrap.plan_from_env(_env(tmp_path, "none", **{
        f"{secrets.env_name(bootstrap.SECRET_CATALOG_PASSWORD)}_FILE": str(password)}))
    assert plan.catalog.uri == ("postgresql+psycopg2://iceberg_catalog:p%40ss%2Fw%3Ard%3F@pg:5432/santelake_catalog"
                                "?sslmode=verify-full&sslrootcert=/ca.crt")
    assert plan.storage is None


def test_every_missing_setting_is_named_at_once(tmp_path: Path) -> None:
    env = _env(tmp_path, **{bootstrap.ENV_CATALOG_HOST: "", bootstrap.ENV_LANDING_BUCKET: ""})
    del env[f"{secrets.env_name(bootstrap.SECRET_MINIO_ROOT_PASSWORD)}_FILE"]
    with pytest.raises(ConfigError) as caught:
        bootstrap.plan_from_env(env)
    message = str(caught.value)
    for name in (bootstrap.ENV_CATALOG_HOST, bootstrap.ENV_LANDING_BUCKET,
                 "SANTELAKE_SECRET_MINIO_ROOT_PASSWORD_FILE"):
        assert name in message


@pytest.mark.parametrize(("changes", "expected"), [
    ({bootstrap.ENV_STORAGE: "seaweedfs"}, "SANTELAKE_BOOTSTRAP_STORAGE must be"),
    ({bootstrap.ENV_S3_ENDPOINT: "http://minio:9000"}, "is not an https:// URL"),
    ({bootstrap.ENV_CATALOG_PORT: "five"}, "not a port number"),
])
def test_bad_settings_are_refused(tmp_path: Path, changes: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        bootstrap.plan_from_env(_env(tmp_path, **changes))


def test_an_empty_or_unreadable_secret_file_is_refused(tmp_path: Path) -> None:
    name = bootstrap.SECRET_CATALOG_PASSWORD
    variable = f"{secrets.env_name(name)}_FILE"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="secret is empty"):
        secrets.provided(name, {variable: str(tmp_path / "empty")})
    with pytest.raises(ConfigError, match=f"from {variable}"):
        secrets.provided(name, {variable: str(tmp_path / "absent")})
    assert secrets.provided(name, {}) is None


def test_local_accounts_are_the_same_rule() -> None:
    assert account_buckets(WAREHOUSE_BUCKET, LANDING_BUCKET) == ACCOUNTS


def test_catalog_tables_are_the_ones_trino_reads(tmp_path: Path) -> None:
    # The same pyiceberg code as on PostgreSQL, on a SQLite file: no server needed.
    database = tmp_path / "catalog.db"
    for _ in range(2):  # a second run (every upgrade) changes nothing
        bootstrap.create_catalog_tables(f"sqlite:///{database}", "santelake-warehouse")
    with sqlite3.connect(database) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = {row[1] for row in db.execute("PRAGMA table_info(iceberg_tables)")}
    assert {"iceberg_tables", "iceberg_namespace_properties"} <= tables
    # Trino's JDBC catalog schema V1 (its default) needs iceberg_type.
    assert {"catalog_name", "table_namespace", "table_name", "metadata_location", "iceberg_type"} <= columns


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_waits_while_a_server_is_starting() -> None:
    clock, attempts = _Clock(), []

    def step() -> str:
        attempts.append(clock.now)
        if len(attempts) < 3:
            raise ConnectionRefusedError("connection refused")
        return "done"

    assert bootstrap.wait_for(step, "the catalog database", 60, (OSError,), sleep=clock.sleep, clock=clock) == "done"
    assert attempts == [0.0, 1.0, 3.0]


def test_gives_up_naming_the_server_and_does_not_retry_other_errors() -> None:
    clock = _Clock()

    def refused() -> None:
        raise ConnectionRefusedError("connection refused")

    with pytest.raises(ServiceError, match=r"MinIO \(m:9000\) did not answer within 30s: connection refused"):
        bootstrap.wait_for(refused, "MinIO (m:9000)", 30, (OSError,), sleep=clock.sleep, clock=clock)
    assert clock.now <= 30

    def wrong_password() -> None:
        raise PermissionError("access denied")

    with pytest.raises(PermissionError):
        bootstrap.wait_for(wrong_password, "MinIO", 30, (ConnectionError,), sleep=clock.sleep, clock=clock)
