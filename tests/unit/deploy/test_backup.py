"""The parts of `santelake backup`/`restore` that need no cluster: where objects are written, the
manifest check that comes before any change, and the refusal of stores it cannot copy. The
cluster test (tests/cluster/test_restore.py) runs the whole of it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from santelake.deploy.backup import FORMAT, MANIFEST, object_path, read_manifest, release_of
from santelake.errors import ConfigError, ServiceError


@pytest.mark.parametrize("key", ["", "/etc/passwd", "a/../../b", "incoming/./x", "a//b"])
def test_a_key_that_could_leave_the_backup_is_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ServiceError, match="cannot be stored"):
        object_path(tmp_path, key)


def test_a_key_is_its_relative_path(tmp_path: Path) -> None:
    assert object_path(tmp_path, "incoming/beneficiaries/x.csv") == tmp_path / "incoming" / "beneficiaries" / "x.csv"


def _backup(tmp_path: Path) -> Path:
    root = tmp_path / "backup"
    (root / "buckets" / "warehouse" / "t").mkdir(parents=True)
    dump, data = root / "catalog.dump", root / "buckets" / "warehouse" / "t" / "f.parquet"
    dump.write_bytes(b"dump")
    data.write_bytes(b"rows")
    manifest = {"format": FORMAT, "finished": "2026-12-01T00:00:00+00:00",
                "databases": {"catalog": {"role": "r", "file": "catalog.dump", "bytes": 4,
                                          "sha256": hashlib.sha256(b"dump").hexdigest()}},
                "buckets": {"warehouse": [{"key": "t/f.parquet", "bytes": 4, "metadata": {},
                                           "sha256": hashlib.sha256(b"rows").hexdigest()}]}}
    (root / MANIFEST).write_text(json.dumps(manifest))
    return root


def test_a_whole_backup_passes_its_check(tmp_path: Path) -> None:
    assert read_manifest(_backup(tmp_path))["buckets"]["warehouse"][0]["key"] == "t/f.parquet"


def test_a_changed_or_missing_file_is_named_before_anything_is_restored(tmp_path: Path) -> None:
    root = _backup(tmp_path)
    (root / "buckets" / "warehouse" / "t" / "f.parquet").write_bytes(b"ROWS")
    (root / "catalog.dump").unlink()
    with pytest.raises(ConfigError, match="damaged; nothing was restored") as error:
        read_manifest(root)
    assert "catalog.dump: missing" in str(error.value)
    assert "f.parquet: differs from the manifest" in str(error.value)


def test_an_unfinished_backup_is_refused(tmp_path: Path) -> None:
    root = _backup(tmp_path)
    manifest = json.loads((root / MANIFEST).read_text())
    del manifest["finished"]
    (root / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="unfinished backup"):
        read_manifest(root)


@pytest.mark.parametrize(("values", "named"), [
    ({"postgresql": {"bundled": False}, "objectStorage": {"type": "minio"}}, "postgresql.bundled"),
    ({"postgresql": {"bundled": True}, "objectStorage": {"type": "external"}}, "objectStorage.type"),
])
def test_stores_outside_the_chart_are_refused_with_the_value_named(values: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        release_of("ns", "santelake", "kubectl", values)
