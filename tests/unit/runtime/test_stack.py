import socket
from pathlib import Path

import pytest

from santelake.config import load_settings
from santelake.errors import PrerequisiteError, ServiceError
from santelake.runtime import stack
from santelake.runtime.layout import Layout
from santelake.runtime.services.minio import Minio


def test_a_port_in_use_is_refused_naming_port_and_service(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        layout = Layout(load_settings({"state_dir": tmp_path, "minio_port": port}, env={}))
        with pytest.raises(ServiceError, match=rf"port {port} on 127\.0\.0\.1, needed by minio .*SANTELAKE_MINIO_PORT"):
            stack._check_ports(layout, Minio(layout))


def test_a_configured_java_that_is_not_java_24_is_named(tmp_path: Path) -> None:
    layout = Layout(load_settings({"state_dir": tmp_path, "java_home": tmp_path / "no-jdk"}, env={}))
    with pytest.raises(PrerequisiteError, match=r"configured java_home .*no-jdk is not Java 24\+"):
        stack.check_prerequisites(layout)


def test_status_of_a_new_installation_reports_every_service_down(tmp_path: Path) -> None:
    layout = Layout(load_settings({"state_dir": tmp_path}, env={}))
    statuses = stack.status(layout)
    assert [s.name for s in statuses] == ["postgres", "minio", "audit", "keycloak", "trino", "airflow", "catalogue"]
    assert not any(s.healthy for s in statuses)
