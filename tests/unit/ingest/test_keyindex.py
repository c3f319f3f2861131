"""The key index (ingest/keyindex.py): the file's hashes in order, each once; runs written, matched
and pruned (on a local folder standing in for the object store); the local cache of runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from santelake.ingest import keyindex
from santelake.ingest.keyindex import (
    SORTED_LOOKUPS,
    FileHashes,
    RunCache,
    as_int64,
    member,
    search,
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


@pytest.mark.parametrize("count", [10, SORTED_LOOKUPS, 50_000])
def test_search_matches_numpy_searchsorted_on_both_paths(count: int) -> None:
    ordered = np.sort(_hashes(20_000, 80))
    rng = np.random.default_rng(82)
    # Half held (some several times), half not; in random order.
    values = np.concatenate([_hashes(count - count // 2, 81), ordered[rng.integers(0, len(ordered), count // 2)]])
    rng.shuffle(values)
    assert len(values) == count
    assert np.array_equal(search(ordered, values), np.searchsorted(ordered, values))


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


def _cached(cache: RunCache) -> dict[str, list[str]]:
    """Each cached run (of any table) and its row groups' files."""
    return {folder.name: sorted(path.name for path in folder.iterdir())
            for table in sorted(cache.folder.iterdir()) for folder in sorted(table.iterdir())}


def _group(cache: RunCache, index: keyindex.KeyIndex, run_path: str, group: int) -> Path:
    run = run_path.rsplit("/", 1)[-1].removesuffix(".parquet")
    return cache.table_folder(index.location) / run / f"{group:05d}.i64"


def test_the_cache_is_filled_by_writes_and_reads_and_answers_without_the_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyindex, "ROW_GROUP", 1_000)
    cache = RunCache(tmp_path / "cache", 1 << 30)
    values = [sorted_unique(as_int64(_hashes(2_500, seed))) for seed in (30, 31)]
    written = keyindex.KeyIndex(_Table(tmp_path), cache).write(["s3://w/a"], [values[0]])
    other = keyindex.KeyIndex(_Table(tmp_path)).write(["s3://w/b"], [values[1]])  # no cache: not kept
    name = written.rsplit("/", 1)[-1].removesuffix(".parquet")
    assert _cached(cache) == {name: ["00000.i64", "00001.i64", "00002.i64"]}
    index = keyindex.KeyIndex(_Table(tmp_path), cache)
    runs = index.runs()
    fresh = _hashes(3_000, 32)
    assert index.repeated(runs, FileHashes([fresh], len(fresh), tmp_path)) == set()
    # Read from the store once, the second run is cached too, byte for byte its row groups.
    other_name = other.rsplit("/", 1)[-1].removesuffix(".parquet")
    assert _cached(cache)[other_name] == ["00000.i64", "00001.i64", "00002.i64"]
    assert np.array_equal(np.concatenate([np.fromfile(_group(cache, index, other, group), dtype=np.int64)
                                          for group in range(3)]), values[1])
    # With the runs gone from the store, the cache alone still finds a repeated hash, and only there.
    for run in runs:
        Path(run.path.removeprefix("file://")).unlink()
    known = np.array([values[1][2_100]]).view(np.uint64) ^ keyindex.SIGN
    assert index.repeated(runs, FileHashes([fresh, known], len(fresh) + 1, tmp_path)) == {other}


@pytest.mark.parametrize("damage", ["truncated", "first hash changed", "empty"])
def test_a_cached_group_that_does_not_match_its_run_is_dropped_and_read_from_the_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, damage: str) -> None:
    monkeypatch.setattr(keyindex, "ROW_GROUP", 1_000)
    cache = RunCache(tmp_path / "cache", 1 << 30)
    index = keyindex.KeyIndex(_Table(tmp_path), cache)
    values = sorted_unique(as_int64(_hashes(2_500, 40)))
    path = index.write(["s3://w/a"], [values])
    group = _group(cache, index, path, 0)
    cached = np.fromfile(group, dtype=np.int64)
    assert np.array_equal(cached, values[:1_000])
    if damage == "truncated":
        cached[:-1].tofile(group)
    elif damage == "first hash changed":
        cached[0] -= 1
        cached.tofile(group)
    else:
        group.write_bytes(b"")
    # The damaged group held the repeated hash: found all the same, from the store.
    known = np.array([values[500]]).view(np.uint64) ^ keyindex.SIGN
    assert index.repeated(index.runs(), FileHashes([known], 1, tmp_path)) == {path}
    assert "does not match its run's footer" in caplog.text
    assert np.array_equal(np.fromfile(group, dtype=np.int64), values[:1_000])  # put back as read


def test_the_cache_keeps_its_limit_dropping_the_runs_least_recently_used(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setattr(keyindex, "ROW_GROUP", 1_000)
    cache = RunCache(tmp_path / "cache", 3 * 8_000)  # three row groups of 1,000 hashes
    index = keyindex.KeyIndex(_Table(tmp_path), cache)
    paths = [index.write([f"s3://w/{seed}"], [sorted_unique(as_int64(_hashes(1_000, seed)))]) for seed in (50, 51, 52)]
    names = [path.rsplit("/", 1)[-1].removesuffix(".parquet") for path in paths]
    for age, path in zip((300, 100, 200), paths, strict=True):  # the first run is the least recently used
        os.utime(_group(cache, index, path, 0).parent, (1e9 - age, 1e9 - age))
    assert cache.trim() == 0  # at its limit, not over
    index.write(["s3://w/53"], [sorted_unique(as_int64(_hashes(1_000, 53)))])
    assert names[0] not in _cached(cache) and {names[1], names[2]} <= set(_cached(cache))
    assert len(_cached(cache)) == 3
    # Nothing is kept at 0, and a negative size is refused.
    nothing = RunCache(tmp_path / "none", 0)
    keyindex.KeyIndex(_Table(tmp_path), nothing).write(["s3://w/e"], [sorted_unique(as_int64(_hashes(10, 54)))])
    assert not nothing.folder.exists()
    with pytest.raises(ValueError, match="0 or more bytes"):
        RunCache(tmp_path / "bad", -1)


def test_runs_the_store_no_longer_holds_leave_the_cache_and_an_erasure_forgets_its_tables(tmp_path: Path) -> None:
    cache = RunCache(tmp_path / "cache", 1 << 30)
    index = keyindex.KeyIndex(_Table(tmp_path), cache)
    other = keyindex.KeyIndex(_Table(tmp_path / "other"), cache)
    kept, pruned = (index.write([f"s3://w/{seed}"], [sorted_unique(as_int64(_hashes(100, seed)))]) for seed in (70, 71))
    elsewhere = other.write(["s3://w/x"], [sorted_unique(as_int64(_hashes(100, 72)))])
    assert len(_cached(cache)) == 3 and not any(name.startswith(keyindex.PENDING) for name in _cached(cache))
    # A run being written is not listed yet: a listing meanwhile leaves its groups alone.
    cache.put(index.location, "s3://w/t/santelake-keys/run-new.parquet", 0, np.arange(3), pending=True)
    assert index.prune({"s3://w/70"}) == 1  # the run of s3://w/71 is deleted from the store...
    assert _group(cache, index, kept, 0).exists() and not _group(cache, index, pruned, 0).parent.exists()
    assert (cache.table_folder(index.location) / f"{keyindex.PENDING}run-new").exists()
    index.forget_cached()  # ... and an erasure forgets the table's runs, not another table's
    assert not cache.table_folder(index.location).exists() and _group(cache, other, elsewhere, 0).exists()


def test_a_cache_that_cannot_be_written_costs_only_its_speed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "cache").write_text("a file where the folder should be")
    cache = RunCache(tmp_path / "cache", 1 << 30)
    index = keyindex.KeyIndex(_Table(tmp_path), cache)
    values = sorted_unique(as_int64(_hashes(100, 60)))
    path = index.write(["s3://w/a"], [values])
    assert "cannot write" in caplog.text
    known = np.array([values[7]]).view(np.uint64) ^ keyindex.SIGN
    assert index.repeated(index.runs(), FileHashes([known], 1, tmp_path)) == {path}


def test_more_parts_than_a_uint16_names_are_refused_not_mixed(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyindex, "PART_ROWS", 1)
    with pytest.raises(ValueError, match="at most 65,536"):
        FileHashes([], (1 << 16) + 1, tmp_path)
