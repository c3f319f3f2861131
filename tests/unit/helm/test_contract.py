"""The contract between the chart and the code, for every pod of every scenario: each variable
and file the code reads is set, and the chart sets nothing the code does not read."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from santelake.audit import client as audit_client
from santelake.audit.config import ENV as AUDIT_ENV
from santelake.audit.config import AuditSettings
from santelake.locations import ENV_SCHEMAS_DIR
from santelake.render import airflow, bootstrap
from santelake.render import helm as chart
from santelake.settings import variables
from tests.unit.helm.conftest import SCENARIOS, Rendered

Render = Callable[[str], Rendered]
# Read by something other than santelake's code, and why.
READ_ELSEWHERE = {
    "SSL_CERT_FILE": "OpenSSL's default CA file: Airflow's task SDK verifies the API server with the platform CA",
    "HOME": "the bootstrap Job's scratch home (pyiceberg and GX write there)",
}
_EXPANDED = re.compile(r"\$\(([A-Z0-9_]+)\)")


def _containers(rendered: Rendered, which: Callable[[str, dict[str, str]], bool]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, labels, spec in rendered.pods():
        if which(name, labels):
            found += [(f"{name}/{c['name']}", c) for c in spec.get("initContainers", []) + spec["containers"]]
    return found


def _env(container: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(e["name"], e.get("value")) for e in container.get("env", [])]


def _check_expansions(where: str, env: list[tuple[str, str | None]]) -> set[str]:
    """Every $(VAR) refers to a variable set earlier in the list (Kubernetes expands only those); returns them."""
    seen: set[str] = set()
    used: set[str] = set()
    for name, value in env:
        for ref in _EXPANDED.findall(value or ""):
            assert ref in seen, f"{where}: {name} expands $({ref}), which is not set before it"
            used.add(ref)
        seen.add(name)
    return used


def _check_files_are_mounted(where: str, container: dict[str, Any], env: list[tuple[str, str | None]]) -> None:
    mounts = [PurePosixPath(m["mountPath"]) for m in container.get("volumeMounts", [])]
    for name, value in env:
        if name.endswith(("_FILE", "_DIR")) and value:
            path = PurePosixPath(value)
            if name.endswith("_DIR") and value.startswith("/opt/santelake/"):
                continue  # a folder of the image itself (checked against the Dockerfile below)
            assert any(path == m or m in path.parents for m in mounts), f"{where}: {name}={value} is not mounted"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_airflow_pods_get_every_setting_the_code_reads_and_nothing_else(render: Render, scenario: str) -> None:
    read = set(variables()) | set(airflow.environment(chart.airflow_params())) | set(airflow.SECRETS) | {
        airflow.CLIENT_SECRET, audit_client.URL_ENV, audit_client.TOKEN_FILE_ENV}
    containers = _containers(render(scenario), lambda _, labels: labels.get("santelake.io/airflow") == "true")
    assert len(containers) >= 9  # four Deployments (each with its init container) and the migration Job
    for where, container in containers:
        if container["command"][0] not in ("airflow", "santelake"):
            assert "env" not in container, f"{where}: runs no santelake code, so it needs no settings"
            continue
        env = _env(container)
        names = [name for name, _ in env]
        assert len(names) == len(set(names)), f"{where}: a variable is set twice"
        missing = sorted(set(variables()) - set(names))
        assert not missing, f"{where}: the platform settings need {missing}"
        expanded = _check_expansions(where, env)
        unread = sorted(set(names) - read - expanded - set(READ_ELSEWHERE))
        assert not unread, f"{where}: set but read by nothing: {unread}"
        _check_files_are_mounted(where, container, env)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_only_the_api_server_holds_the_keycloak_clients_secret(render: Render, scenario: str) -> None:
    holders = [where for where, container in _containers(render(scenario), lambda *_: True)
               if airflow.CLIENT_SECRET in dict(_env(container))]
    assert holders == [f"{chart.CHART_DIR.name}-airflow-api-server/api-server"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_bootstrap_job_gets_what_the_command_reads_and_nothing_else(render: Render, scenario: str) -> None:
    [(where, container)] = _containers(render(scenario), lambda name, _: name.endswith("-bootstrap"))
    env = _env(container)
    names = {name for name, _ in env}
    storage = dict(env)[bootstrap.ENV_STORAGE]
    required = {bootstrap.ENV_STORAGE, bootstrap.ENV_CATALOG_HOST, bootstrap.ENV_CATALOG_PORT,
                bootstrap.ENV_CATALOG_DATABASE, bootstrap.ENV_CATALOG_USER, bootstrap.ENV_CA_FILE,
                bootstrap.ENV_WAREHOUSE_BUCKET, bootstrap.ENV_S3_ENDPOINT, ENV_SCHEMAS_DIR,
                bootstrap.ENV_AUDIT_ADMIN_USER}
    required |= {item["env"] for item in chart.bootstrap_secrets(storage)}
    if storage == bootstrap.STORAGE_MINIO:
        required.add(bootstrap.ENV_LANDING_BUCKET)
    assert required <= names, f"{where}: missing {sorted(required - names)}"
    assert names - required <= set(READ_ELSEWHERE), f"{where}: set but read by nothing: {sorted(names - required)}"
    _check_files_are_mounted(where, container, env)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_audit_receiver_gets_every_setting_and_its_files_mounted(render: Render, scenario: str) -> None:
    [(where, container)] = _containers(render(scenario), lambda name, _: name.endswith("-audit"))[-1:]
    env = _env(container)
    names = {name for name, _ in env}
    assert names - {"HOME"} == set(AUDIT_ENV.values()), f"{where}: {sorted(names ^ set(AUDIT_ENV.values()))}"
    # The settings parse as the receiver reads them, secrets standing in, and name mounted files.
    values = {name: value or "secret" for name, value in env}
    settings = AuditSettings.from_environment(values)
    assert (settings.db_user, settings.db_name, settings.bind) == ("audit_writer", "santelake_audit", "0.0.0.0")
    assert not settings.s3_endpoint.startswith("https://") and ":" in settings.s3_endpoint
    mounts = [PurePosixPath(m["mountPath"]) for m in container["volumeMounts"]]
    for path in (settings.tls_cert, settings.tls_key, settings.ca_file, settings.rules_file, settings.identity_file):
        assert path is not None and any(m in PurePosixPath(path).parents for m in mounts), f"{where}: {path}"
    assert container["command"] == ["santelake", "audit", "serve"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_retention_job_purges_as_the_writer_and_the_administrator_and_nothing_else(
        render: Render, scenario: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from santelake.audit import cli

    [(where, container)] = _containers(render(scenario), lambda name, _: name.endswith("-audit-retention"))
    env = _env(container)
    _check_files_are_mounted(where, container, env)
    assert container["command"][:3] == ["santelake", "audit", "purge"]
    values = {name: value or "secret" for name, value in env}
    settings = AuditSettings.from_environment(values)
    assert settings.db_user == "audit_writer" and not settings.s3_endpoint, "no storage account: it needs none"
    # The administrator's password file, as the pod mounts it, is what the command reads.
    password_file = tmp_path / "password"
    password_file.write_text("admin-password\n")
    for name, value in values.items():
        monkeypatch.setenv(name, str(password_file) if value.startswith("/var/run/santelake/audit-admin/") else value)
    assert cli._administrator(settings) is not None
    monkeypatch.delenv(bootstrap.ENV_AUDIT_ADMIN_USER)
    with pytest.raises(Exception, match="SANTELAKE_AUDIT_DB_ADMIN_USER"):
        cli._administrator(settings)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_trino_pods_set_exactly_what_their_configuration_references(render: Render, scenario: str) -> None:
    rendered = render(scenario)
    for role in ("coordinator", "worker"):
        files = rendered.named("ConfigMap", f"-trino-{role}")["data"]
        if role == "coordinator":
            files = files | rendered.named("ConfigMap", "-policy")["data"]
        referenced = {part.split("}")[0] for text in files.values() for part in text.split("${ENV:")[1:]}
        for where, container in _containers(rendered, lambda name, _, r=role: name.endswith(f"-trino-{r}")):
            if where.endswith("/tls"):
                continue  # the init container building the keystore reads only files
            env = _env(container)
            names = {name for name, _ in env}
            expanded = _check_expansions(where, env)
            assert referenced <= names, f"{where}: referenced but not set: {sorted(referenced - names)}"
            assert names <= referenced | expanded, f"{where}: set but read by nothing: {sorted(names - referenced)}"


def test_the_image_holds_the_folders_the_chart_names() -> None:
    dockerfile = (chart.CHART_DIR.parents[1] / "Dockerfile").read_text()
    contract = json.loads((chart.CHART_DIR / chart.GENERATED_DIR / chart.CONTRACT_FILE).read_text())
    platform = contract["platform"]
    for variable, folder in ((ENV_SCHEMAS_DIR, platform["schemasDir"]), ("SANTELAKE_POLICIES_DIR",
                                                                          platform["policiesDir"])):
        assert f"{variable}={folder}" in dockerfile
        assert f"COPY {PurePosixPath(folder).name} {folder}" in dockerfile
