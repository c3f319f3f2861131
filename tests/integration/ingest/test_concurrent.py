"""Loads of different sources run side by side (one DAG per source, all recording in the
same ops tables), and another writer may commit to a table while a load of it runs (a data
engineer's compaction): neither fails the other. pyiceberg retries a commit that lost the
race on the refreshed table; these tests keep that true for santelake's writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from santelake.ingest.load import Loader
from santelake.lake.append import ChunkedAppend


def _records(loader: Loader) -> list[tuple[str, str]]:
    table = loader.catalog.load_table(loader.schemas["ops.ingested_files"].identifier)
    return sorted((r["file_name"], r["status"]) for r in table.scan().to_arrow().to_pylist())


def test_another_sources_load_between_publish_and_record_fails_neither(
        scratch_loader: Callable[..., Loader], extracts: Path) -> None:
    # Each loader has catalog objects of its own, as each DAG's task has.
    loader, other = scratch_loader(), scratch_loader()
    assert loader.load("snds.beneficiaries", extracts / "beneficiaries.csv").status == "published"

    def meanwhile(step: str) -> None:
        # Between this load's publish and its record, another source's load records its own
        # file (and quarantine, if any) in the same ops tables.
        if step == "publish":
            assert other.load("snds.hospital_stays", extracts / "hospital_stays.csv").status == "published"

    first = scratch_loader(after_step=meanwhile)
    assert first.load("snds.outpatient_claims", extracts / "outpatient_claims.csv").status == "published"
    assert _records(loader) == [("beneficiaries.csv", "published"), ("hospital_stays.csv", "published"),
                                ("outpatient_claims.csv", "published")]


def test_a_commit_lands_after_a_concurrent_commit_of_the_same_table(
        scratch: tuple[Loader, str], extracts: Path) -> None:
    loader, _ = scratch
    assert loader.load("snds.beneficiaries", extracts / "beneficiaries.csv").status == "published"
    identifier = loader.schemas["snds.beneficiaries"].identifier
    table = loader.catalog.load_table(identifier)
    rows = table.scan().to_arrow()
    appender = ChunkedAppend(table)
    appender.write(rows.slice(0, 10))
    # Meanwhile another writer commits to the same table, so the table the appender read is
    # no longer current.
    loader.catalog.load_table(identifier).append(rows.slice(10, 1))
    appender.commit({"santelake.source-file": "concurrent"})
    after = loader.catalog.load_table(identifier)
    assert after.scan().count() == rows.num_rows + 11
    summaries = [s.summary.additional_properties for s in after.metadata.snapshots if s.summary is not None]
    assert sum(1 for p in summaries if p.get("santelake.source-file") == "concurrent") == 1
