"""The output is a function of (seed, scale) alone, and files appear only when complete."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from santelake.synth import TABLES, SynthError, SynthReport, synthesize


def _digests(out_dir: Path) -> dict[str, str]:
    return {
        source.file_name: hashlib.sha256((out_dir / source.file_name).read_bytes()).hexdigest()
        for source in TABLES.values()
    }


def test_same_seed_gives_the_same_bytes(report: SynthReport, tmp_path: Path) -> None:
    again = synthesize(tmp_path, scale=report.scale, seed=report.seed)
    assert _digests(again.out_dir) == _digests(report.out_dir)


def test_another_seed_changes_every_file(report: SynthReport, tmp_path: Path) -> None:
    other = synthesize(tmp_path, scale=report.scale, seed=report.seed + 1)
    ours, theirs = _digests(report.out_dir), _digests(other.out_dir)
    assert all(ours[name] != theirs[name] for name in ours)


def test_chunk_size_does_not_change_a_byte(tmp_path: Path) -> None:
    # Enough persons for several blocks and for pharmacy to fill more than one Parquet row group.
    scale = 25_000
    small = synthesize(tmp_path / "small", scale=scale, seed=3, chunk_persons=1)
    large = synthesize(tmp_path / "large", scale=scale, seed=3, chunk_persons=scale)
    assert next(f for f in small.files if f.table == "pharmacy_dispensations").rows > 131_072
    assert _digests(small.out_dir) == _digests(large.out_dir)


def test_report_counts_the_rows_written(report: SynthReport) -> None:
    assert [f.table for f in report.files] == list(TABLES)
    for file in report.files:
        source = TABLES[file.table]
        assert file.path == report.out_dir / source.file_name
        assert file.format == source.format
        if source.format == "csv":
            lines = file.path.read_bytes().count(b"\n")
            assert lines == file.rows + 1  # the header
    assert next(f for f in report.files if f.table == "beneficiaries").rows == report.scale


def test_no_partial_file_is_left_behind(report: SynthReport) -> None:
    assert sorted(p.name for p in report.out_dir.iterdir()) == sorted(s.file_name for s in TABLES.values())


def test_progress_reports_persons_written(tmp_path: Path) -> None:
    seen: list[int] = []
    synthesize(tmp_path, scale=2_100, seed=1, chunk_persons=1_000, progress=seen.append)
    assert seen == [1_000, 2_000, 2_100]


@pytest.mark.parametrize(
    ("scale", "seed", "chunk_persons", "message"),
    [
        (0, 1, 1_000, "scale must be between 1 and"),
        (200_000_000, 1, 1_000, "scale must be between 1 and"),
        (100, -1, 1_000, "seed must be zero or positive"),
        (100, 1, 0, "chunk_persons must be positive"),
    ],
)
def test_out_of_range_requests_are_refused_before_writing(
    tmp_path: Path, scale: int, seed: int, chunk_persons: int, message: str
) -> None:
    with pytest.raises(SynthError, match=message):
        synthesize(tmp_path / "out", scale=scale, seed=seed, chunk_persons=chunk_persons)
    assert not (tmp_path / "out").exists()


def test_smallest_scale_still_writes_every_table(tmp_path: Path) -> None:
    report = synthesize(tmp_path, scale=1, seed=0)
    assert {f.table for f in report.files} == set(TABLES)
    assert all(f.path.exists() for f in report.files)
