"""The ops tables stay cheap to commit to and to look up however many files were loaded:
their history is trimmed, their manifests merged, and nothing they hold is lost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from santelake.ingest import runner
from santelake.ingest.load import Loader

# Every source, in load order, by the file name the synthetic generator writes.
SOURCES = {s.name: s.source.file for s in runner.sources() if s.source is not None}


def test_ops_history_is_trimmed_and_every_record_and_quarantined_row_stays(
        scratch_loader: Callable[..., Loader], extracts: Path, tmp_path: Path) -> None:
    loader = scratch_loader(ops_history=2)
    for source, name in SOURCES.items():
        assert loader.load(f"snds.{source}", extracts / name).status == "published"
    # Three more claims files, each with one duplicate row: three quarantine commits.
    header, *lines = (extracts / "outpatient_claims.csv").read_bytes().splitlines(keepends=True)
    for n in range(3):
        path = tmp_path / f"claims_{n}.csv"
        renumbered = [f"{n + 1}".encode() + line[1:] for line in lines[:30]]
        path.write_bytes(header + b"".join(renumbered) + renumbered[0])
        result = loader.load("snds.outpatient_claims", path)
        assert (result.status, result.rows_published, result.rows_quarantined) == ("published", 30, 1)

    files = loader.catalog.load_table(loader.schemas["ops.ingested_files"].identifier)
    quarantine = loader.catalog.load_table(loader.schemas["ops.quarantine"].identifier)
    assert len(files.metadata.snapshots) <= 4 < 8  # eight records, at most twice ops_history snapshots
    assert files.scan().count() == 8
    assert quarantine.scan().count() == 3
    assert len(files.current_snapshot().manifests(files.io)) < 8  # merged
    # Every file is still known: a reload is a no-op.
    for source, name in SOURCES.items():
        assert loader.load(f"snds.{source}", extracts / name).status == "already-published"
    for n in range(3):
        assert loader.load("snds.outpatient_claims", tmp_path / f"claims_{n}.csv").status == "already-published"
