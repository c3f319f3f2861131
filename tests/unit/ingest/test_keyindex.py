"""The key index's in-memory parts (ingest/keyindex.py): the file's hashes in order, each once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from santelake.ingest import keyindex
from santelake.ingest.keyindex import (
    SORTED_LOOKUPS,
    FileHashes,
    as_int64,
    member,
    shares_a_hash,
    sorted_unique,
)


def _hashes(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, np.iinfo(np.uint64).max, count, dtype=np.uint64,
                                               endpoint=True)


@pytest.mark.parametrize("part_rows", [1 << 20, 300])
def test_the_parts_hold_every_hash_once_in_ascending_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          part_rows: int) -> None:
    monkeypatch.setattr(keyindex, "PART_ROWS", part_rows)
    hashes = _hashes(5_000, 1)
    hashes[10:20] = hashes[0]  # repeats are kept once
    extra = np.concatenate([_hashes(700, 2), hashes[:5], np.array([0, np.iinfo(np.uint64).max], dtype=np.uint64)])
    found = FileHashes([hashes[:2_000], hashes[2_000:]], len(hashes), tmp_path)
    assert found.bits == (5 if part_rows == 300 else 0)
    parts = list(found.parts(extra))
    joined = np.concatenate(parts)
    expected = np.unique(as_int64(np.concatenate([hashes, extra])))
    assert np.array_equal(joined, expected)  # ascending across the parts, each hash once
    assert len(parts) == (1 << found.bits)


def test_the_int64_order_is_the_unsigned_order() -> None:
    values = np.array([0, 1, 1 << 63, (1 << 64) - 1], dtype=np.uint64)
    assert list(np.argsort(as_int64(values))) == [0, 1, 2, 3]


def test_a_shared_hash_is_found_and_none_is_not() -> None:
    run = sorted_unique(as_int64(_hashes(100_000, 3)))
    part = sorted_unique(as_int64(_hashes(10_000, 4)))
    assert not shares_a_hash(part, run)
    assert shares_a_hash(np.sort(np.append(part, run[50_000])), run)
    assert shares_a_hash(run[-1:], run) and shares_a_hash(run[:1], run)
    assert not shares_a_hash(part, run[:0])


def test_member_matches_numpy_isin_at_both_ends_and_in_between() -> None:
    rng = np.random.default_rng(3)
    ordered = np.sort(rng.integers(0, 2**64 - 1, 5_000, dtype=np.uint64))
    values = np.concatenate([ordered[::7], rng.integers(0, 2**64 - 1, 5_000, dtype=np.uint64),
                             np.array([0, 2**64 - 1, ordered[0], ordered[-1]], dtype=np.uint64)])
    assert len(values) >= SORTED_LOOKUPS  # the values sorted first
    assert (member(values, ordered) == np.isin(values, ordered)).all()
    assert member(values, ordered).sum() >= len(ordered[::7]) + 2
    assert not member(values, ordered[:0]).any()
    few = np.concatenate([values[:300], values[-4:]])  # each looked up as it comes
    assert len(few) < SORTED_LOOKUPS and (member(few, ordered) == np.isin(few, ordered)).all()
    assert member(few, ordered)[-4:].tolist() == [False, False, True, True]


def test_sorted_unique_matches_numpy() -> None:
    values = np.random.default_rng(5).integers(-50, 50, 1_000)
    assert np.array_equal(sorted_unique(values), np.unique(values))
    assert len(sorted_unique(values[:0])) == 0 and list(sorted_unique(values[:1])) == [values[0]]


class _Table:
    """What KeyIndex reads of a table: its location and file IO (here a local folder)."""

    def __init__(self, root: Path) -> None:
        from types import SimpleNamespace

        from pyiceberg.io.pyarrow import PyArrowFileIO

        self.metadata = SimpleNamespace(location=f"file://{root}/table")
        self.io = PyArrowFileIO()


def test_runs_are_listed_with_their_files_matched_and_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyindex, "ROW_GROUP", 1_000)  # several row groups a run, read ahead
    index = keyindex.KeyIndex(_Table(tmp_path))
    assert index.runs() == []  # no folder yet
    values = [sorted_unique(as_int64(_hashes(5_000, seed))) for seed in (10, 11, 12)]
    paths = [index.write(["s3://w/a", "s3://w/b"], [values[0]]), index.write(["s3://w/c"], [values[1]]),
             index.write(["s3://w/d"], [values[2][:2_500], values[2][2_500:]])]
    runs = {run.path: run for run in index.runs()}
    assert set(runs) == set(paths)
    assert runs[paths[0]].files == {"s3://w/a", "s3://w/b"} and runs[paths[2]].rows == 5_000
    fresh = _hashes(3_000, 20)
    assert index.repeated(list(runs.values()), FileHashes([fresh], len(fresh), tmp_path)) == set()
    # One value of the second run and one of the third's last row group: those two runs, no other.
    known = (np.array([values[1][1_234], values[2][4_999]]).view(np.uint64) ^ keyindex.SIGN)
    found = index.repeated(list(runs.values()), FileHashes([fresh, known], len(fresh) + 2, tmp_path))
    assert found == {paths[1], paths[2]}
    assert index.prune({"s3://w/c"}) == 2
    assert [run.path for run in index.runs()] == [paths[1]]


def test_more_parts_than_a_uint16_names_are_refused_not_mixed(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyindex, "PART_ROWS", 1)
    with pytest.raises(ValueError, match="at most 65,536"):
        FileHashes([], (1 << 16) + 1, tmp_path)
