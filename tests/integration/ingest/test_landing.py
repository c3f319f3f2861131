"""Extracts land in the landing bucket and the Airflow scheduler loads them: no test command calls a load.

The ``ingest`` DAG runs every 30 s in the running stack's scheduler. Each test lands objects
and then only watches the bucket and the lake.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from santelake.digest import file_sha256
from santelake.errors import ConfigError
from santelake.ingest import runner
from santelake.ingest.landing import INCOMING, LOADED, REJECTED, Landing
from santelake.ingest.load import ROWS_READ, SOURCE_HASH
from santelake.runtime.layout import Layout
from santelake.runtime.services.minio import Minio
from santelake.settings import PlatformSettings
from santelake.synth import synthesize

# Two scheduler intervals and a load, with room for a busy 2-core machine.
SCHEDULER_TIMEOUT_S = 240


def _until(check: Callable[[], bool], what: str, timeout: float = SCHEDULER_TIMEOUT_S) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(2)
    return time.monotonic() - started


@pytest.fixture()
def landing(platform: PlatformSettings) -> Iterator[Landing]:
    """The installation's landing bucket; objects a test leaves in rejected/ are removed afterwards."""
    bucket = Landing.of(platform)
    before = {o.key for o in bucket.objects(REJECTED)}
    yield bucket
    for obj in bucket.objects(REJECTED):
        if obj.key not in before:
            bucket.client.remove_object(bucket.bucket, obj.key)


def _keys(landing: Landing, state: str) -> set[str]:
    return {o.key for o in landing.objects(state)}


def test_the_scheduler_loads_a_landed_extract_once_and_deletes_it(
        landing: Landing, catalog: Any, tmp_path: Path) -> None:
    # 30 persons, under a name no other run used: a beneficiaries extract to publish.
    report = synthesize(tmp_path, scale=30, seed=secrets.randbelow(1 << 30))
    extract = next(Path(item.path) for item in report.files if item.table == "beneficiaries")
    named = extract.rename(tmp_path / f"beneficiaries-{uuid.uuid4().hex[:8]}.csv")
    sha = file_sha256(named)
    key = landing.land("beneficiaries", named)
    assert key in _keys(landing, INCOMING)

    waited = _until(lambda: key not in _keys(landing, INCOMING), f"{key} still waiting")
    print(f"\nlanded to loaded by the scheduler: {waited:.0f}s")
    # Loaded, and not kept: raw extracts hold NIRs.
    assert not any(o.name == named.name for state in (LOADED, REJECTED) for o in landing.objects(state))
    table = catalog.load_table(runner.schemas()["snds.beneficiaries"].identifier)
    published = [s for s in table.metadata.snapshots
                 if s.summary and s.summary.additional_properties.get(SOURCE_HASH) == sha]
    assert len(published) == 1
    assert published[0].summary.additional_properties[ROWS_READ] == "30"
    files = catalog.load_table(runner.schemas()["ops.ingested_files"].identifier)
    records = files.scan(row_filter=f"file_sha256 == '{sha}'").to_arrow().to_pylist()
    assert [(r["status"], r["file_name"]) for r in records] == [("published", named.name)]
    # A person another seed drew too is already in the lake: kept once (identity across loads).
    record = records[0]
    assert record["row_count"] + record["unchanged_count"] == 30
    assert record["new_count"] + record["updated_count"] == record["row_count"]

    # The same bytes landed again, under another name: loaded as a no-op, nothing published twice.
    again = named.rename(tmp_path / f"resent-{named.name}")
    key = landing.land("beneficiaries", again)
    _until(lambda: key not in _keys(landing, INCOMING), f"{key} still waiting")
    table = catalog.load_table(runner.schemas()["snds.beneficiaries"].identifier)
    assert sum(1 for s in table.metadata.snapshots
               if s.summary and s.summary.additional_properties.get(SOURCE_HASH) == sha) == 1


def test_a_rejected_extract_moves_to_rejected_with_its_reason(landing: Landing, tmp_path: Path) -> None:
    broken = tmp_path / f"broken-{uuid.uuid4().hex[:8]}.csv"
    broken.write_text("BEN_NIR;BEN_NAI_DTE\n1234567890123;01012000\n", encoding="latin-1")
    stray = tmp_path / f"stray-{uuid.uuid4().hex[:8]}.csv"
    stray.write_text("a;b\n1;2\n")
    broken_key = landing.land("beneficiaries", broken)
    stray_key = landing.land("no_such_source", stray)

    _until(lambda: not {broken_key, stray_key} & _keys(landing, INCOMING), "the extracts are still waiting")
    rejected = {o.key: o for o in landing.objects(REJECTED)}
    reason = rejected[f"{REJECTED}/beneficiaries/{broken.name}"].reason
    assert f"s3://{landing.bucket}/{broken_key}:1: missing column(s)" in reason and "BEN_NOM" in reason
    assert "1234567890123" not in reason  # the reason names the file, line and columns, not the values
    reason = rejected[f"{REJECTED}/no_such_source/{stray.name}"].reason
    assert "no source named 'no_such_source'" in reason and "beneficiaries" in reason


def test_sweep_deletes_what_is_past_its_retention_only(layout: Layout, tmp_path: Path) -> None:
    # A bucket of its own, so the sweep cannot touch the installation's landing bucket.
    root = Minio(layout).client()
    bucket = f"sweep-{uuid.uuid4().hex[:8]}"
    root.make_bucket(bucket)
    try:
        scratch = Landing(root, bucket)
        extract = tmp_path / "x.csv"
        extract.write_text("a\n1\n")
        for source in ("one", "two"):
            scratch.land(source, extract)
        first, second = scratch.objects(INCOMING)
        scratch.loaded(first, keep_days=2)
        scratch.rejected(second, "why: a reason with non-ASCII é and newlines\nkept whole")
        assert [o.reason for o in scratch.objects(REJECTED)] == ["why: a reason with non-ASCII é and newlines\n"
                                                                   "kept whole"]
        now = dt.datetime.now(dt.UTC)
        assert scratch.sweep(now, keep_loaded_days=2, keep_rejected_days=30) == []
        assert scratch.sweep(now + dt.timedelta(days=3), 2, 30) == [f"{LOADED}/one/x.csv"]
        assert scratch.sweep(now + dt.timedelta(days=31), 2, 30) == [f"{REJECTED}/two/x.csv"]
        assert scratch.objects(LOADED) == scratch.objects(REJECTED) == []
    finally:
        for obj in root.list_objects(bucket, recursive=True):
            root.remove_object(bucket, obj.object_name)
        root.remove_bucket(bucket)


def test_only_regular_files_are_landed(landing: Landing, tmp_path: Path) -> None:
    link = tmp_path / "beneficiaries.csv"
    link.symlink_to("/etc/passwd")
    with pytest.raises(ConfigError, match="not a regular file"):
        landing.land("beneficiaries", link)
    assert f"{INCOMING}/beneficiaries/beneficiaries.csv" not in _keys(landing, INCOMING)
