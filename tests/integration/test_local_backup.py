"""`santelake backup` and `santelake restore` of the local stack (issue 17, item 6): a backup of the
running stack, restored into a fresh state folder, has the same tables, row counts and snapshots,
answers a researcher's query the same, and its audit trail is proven.

The restored stack runs beside the session's, on ports of its own (each port moved by PORT_SHIFT).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from santelake.access import query
from santelake.access.token import dev_token
from santelake.audit.store import DATABASE as AUDIT_DATABASE
from santelake.config import Settings, load_settings
from santelake.demo import QUESTION
from santelake.lake.catalog import open_catalog
from santelake.names import DATABASES
from santelake.runtime import stack
from santelake.runtime.backup import PASSPHRASE, SECRETS_FILE
from santelake.runtime.layout import Layout
from santelake.runtime.platform import platform_settings
from santelake.runtime.secrets import env_name

pytestmark = pytest.mark.faults

RESEARCHER_QUERY = QUESTION  # santelake up's: alice's stays per ICD-10 chapter per year
SANTELAKE = str(Path(sys.executable).parent / "santelake")
PORT_SHIFT = 1000
PORT_FIELDS = tuple(field.name for field in dataclasses.fields(Settings) if field.name.endswith("_port"))


def _lake(layout: Layout) -> dict[str, tuple[int | None, int]]:
    """Every table: its current snapshot id and its row count."""
    catalog = open_catalog(platform_settings(layout))
    try:
        found = {}
        for namespace in catalog.list_namespaces():
            for identifier in catalog.list_tables(namespace):
                table = catalog.load_table(identifier)
                snapshot = table.current_snapshot()
                rows = int(snapshot.summary["total-records"]) if snapshot and snapshot.summary else 0
                found[".".join(identifier)] = (snapshot.snapshot_id if snapshot else None, rows)
        return found
    finally:
        catalog.engine.dispose()


@pytest.fixture()
def fresh(layout: Layout) -> Iterator[Layout]:
    """A new state folder beside the session's (the PostgreSQL user must reach it) and ports of its
    own, so the restored stack runs beside the session's; stopped and removed after."""
    root = layout.settings.state_dir.with_name(".santelake-restored")
    shutil.rmtree(root, ignore_errors=True)
    ports = {name: getattr(layout.settings, name) + PORT_SHIFT for name in PORT_FIELDS}
    restored = Layout(load_settings({"state_dir": root, **ports}))
    try:
        yield restored
    finally:
        stack.down(restored, log=lambda line: None)
        shutil.rmtree(root, ignore_errors=True)


def _santelake(layout: Layout, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI on ``layout``'s state folder and ports."""
    ports = {f"SANTELAKE_{name.upper()}": str(getattr(layout.settings, name)) for name in PORT_FIELDS}
    return subprocess.run([SANTELAKE, "--state-dir", str(layout.settings.state_dir), *args], capture_output=True,
                          text=True, timeout=1800, env=env | ports, check=False)


def test_a_local_backup_restored_into_a_fresh_state_folder_is_the_same_lake(
        layout: Layout, fresh: Layout, tmp_path: Path) -> None:
    import os

    env = dict(os.environ) | {env_name(PASSPHRASE): "a passphrase for the test backup only"}
    before = _lake(layout)
    answer = query.run(layout, dev_token(layout, "alice"), RESEARCHER_QUERY)[1]
    target = tmp_path / "backup"

    missing = _santelake(layout, "backup", "--to", str(target), env={k: v for k, v in env.items()
                                                                       if not k.startswith(env_name(PASSPHRASE))})
    assert missing.returncode != 0 and env_name(PASSPHRASE) in missing.stderr, missing.stderr[-2000:]
    assert not target.exists() or not any(target.iterdir()), "a refused backup left files behind"

    made = _santelake(layout, "backup", "--to", str(target), env=env)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-3000:]
    manifest: dict[str, Any] = json.loads((target / "manifest.json").read_text())
    assert set(manifest["databases"]) == {*DATABASES.values(), AUDIT_DATABASE}, manifest["databases"]
    assert "pseudonym-key" in manifest["secrets"]["names"]
    key = (layout.secrets.path("pseudonym-key")).read_text().strip()
    assert key.encode() not in b"".join(p.read_bytes() for p in target.rglob("*") if p.is_file()), \
        "the key chain lies in the backup in the clear"
    assert (target / SECRETS_FILE).stat().st_mode & 0o077 == 0

    restored = _santelake(fresh, "restore", "--from", str(target), env=env)
    assert restored.returncode == 0, restored.stdout[-2000:] + restored.stderr[-3000:]

    assert _lake(fresh) == before
    assert query.run(fresh, dev_token(fresh, "alice"), RESEARCHER_QUERY)[1] == answer
    verified = _santelake(fresh, "audit", "verify", env=env)
    assert verified.returncode in (0, 2) and "audit trail proven" in verified.stdout, verified.stdout + verified.stderr
    assert _lake(layout) == before, "the session's own lake changed"
