"""`santelake query` and `santelake token` say what went wrong in one line, never a traceback: a SQL
error or a refusal in Trino's words, and a service down with its name, its URL and where to look."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from santelake.runtime.layout import Layout

SANTELAKE = str(Path(sys.executable).parent / "santelake")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _santelake(layout: Layout, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SANTELAKE, "--state-dir", str(layout.settings.state_dir), *args], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ) | env, check=False)


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(("sql", "said"), [
    ("SELECT no_such_column FROM iceberg.snds.beneficiaries", "(COLUMN_NOT_FOUND)"),
    ("SELECT count(*) FROM iceberg.snds.pharmacy_dispensations", "(PERMISSION_DENIED): Access Denied"),
    ("SELEC 1", "(SYNTAX_ERROR)"),
])
def test_a_sql_error_is_trinos_message_on_one_line(layout: Layout, sql: str, said: str) -> None:
    line = _one_line(_santelake(layout, "query", "--user", "alice", sql))
    assert line.startswith("santelake: error: Trino refused the query ") and said in line, line


def test_trino_down_is_named_with_its_url_and_santelake_status(layout: Layout) -> None:
    port = _free_port()
    line = _one_line(_santelake(layout, "query", "--user", "alice", "SELECT 1", SANTELAKE_TRINO_PORT=str(port)))
    assert f"Trino at https://{layout.settings.hostname}:{port}" in line and "santelake status" in line, line


def test_keycloak_down_is_named_with_its_url_and_santelake_status(layout: Layout) -> None:
    port = _free_port()
    for command in (["token", "--user", "alice"], ["query", "--user", "alice", "SELECT 1"]):
        line = _one_line(_santelake(layout, *command, SANTELAKE_KEYCLOAK_PORT=str(port)))
        assert f"Keycloak at https://{layout.settings.hostname}:{port}" in line and "santelake status" in line, line
