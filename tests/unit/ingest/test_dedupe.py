"""The duplicate check finds exactly the later occurrences, whatever its filter's size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from santelake.ingest import dedupe
from santelake.ingest.dedupe import MIN_DEDUPE_BYTES, BloomFilter, DuplicateFinder, dedupe_bytes, row_hashes


def _batches(seed: int, count: int, size: int, distinct: int) -> list[pa.Table]:
    rng = np.random.default_rng(seed)
    return [pa.table({"person": pa.array(rng.integers(0, distinct, size)).cast(pa.string()),
                      "code": pa.array(rng.integers(0, 3, size), pa.int64()),
                      "note": pa.array([None if v == 0 else f"n{v}" for v in rng.integers(0, 4, size)])})
            for _ in range(count)]


def _run(tmp_path: Path, batches: list[pa.Table], bloom_bytes: int) -> tuple[list[int], list[int], int]:
    """(row numbers written at once or published after all, duplicate row numbers, rows held)."""
    finder = DuplicateFinder(("person", "code", "note"), tmp_path, bloom_bytes)
    kept: list[int] = []
    offset = 0
    for lake in batches:
        raw = lake.append_column("line", pa.array(np.arange(lake.num_rows) + offset + 1))
        positions = np.arange(lake.num_rows)
        write = finder.check(lake, raw.to_batches()[0], positions, offset)
        kept += [int(r) for r in positions[write] + offset + 1]
        offset += lake.num_rows
    duplicates: list[int] = []
    for settled in finder.resolve(["person", "code", "note"]):
        # Held raw columns come back as text (see DuplicateFinder._hold).
        assert [int(line) for line in settled.duplicates["line"].to_pylist()] == settled.duplicate_rows
        assert settled.publish.column_names == ["person", "code", "note"]
        duplicates += settled.duplicate_rows
        kept += _published_rows(settled.publish, batches)
    # What the identity check across loads reads back: each published row's number and key hash.
    every_hash = row_hashes(pa.concat_tables(batches), ["person", "code", "note"])
    numbers = []
    for hashes, rows in finder.published():
        assert (every_hash[rows - 1] == hashes).all()
        numbers += rows.tolist()
    assert sorted(numbers) == sorted(kept)
    assert finder.seen.contains(every_hash).all(), "the file's filter holds every key of the file"
    finder.close()
    return sorted(kept), sorted(duplicates), finder.held


def _published_rows(publish: pa.Table, batches: list[pa.Table]) -> list[int]:
    """Row numbers of the first occurrence of each published key (they are unique by then)."""
    everything = pa.concat_tables(batches)
    first: dict[tuple[object, ...], int] = {}
    for number, key in enumerate(zip(*(everything[c].to_pylist() for c in everything.column_names), strict=True), 1):
        first.setdefault(key, number)
    return [first[key] for key in zip(*(publish[c].to_pylist() for c in publish.column_names), strict=True)]


def _expected(batches: list[pa.Table]) -> tuple[list[int], list[int]]:
    everything = pa.concat_tables(batches)
    seen: set[tuple[object, ...]] = set()
    kept, duplicates = [], []
    for number, key in enumerate(zip(*(everything[c].to_pylist() for c in everything.column_names), strict=True), 1):
        (duplicates if key in seen else kept).append(number)
        seen.add(key)
    return kept, duplicates


@pytest.mark.parametrize("settle_bytes", [64 << 20, 512])
@pytest.mark.parametrize("bloom_bytes", [8, 64, 1 << 20])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exactly_the_later_occurrences_are_duplicates(tmp_path: Path, bloom_bytes: int, seed: int, settle_bytes: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Held rows settle exactly whether they fit one pass or are split by hash range (512 bytes: many)."""
    monkeypatch.setattr(dedupe, "SETTLE_BYTES", settle_bytes)
    batches = _batches(seed, count=5, size=400, distinct=300)
    kept, duplicates, held = _run(tmp_path, batches, bloom_bytes)
    assert (kept, duplicates) == _expected(batches)
    assert duplicates  # the data has duplicates within and across batches
    assert held >= len(duplicates)


def test_a_large_filter_holds_back_only_the_duplicates(tmp_path: Path) -> None:
    batches = _batches(7, count=4, size=5000, distinct=10**9)
    batches.append(batches[0].slice(10, 3))  # three rows of the first batch again
    kept, duplicates, held = _run(tmp_path, batches, 1 << 20)
    assert duplicates == [20_001, 20_002, 20_003]
    assert held == 3
    assert len(kept) == 20_000


def test_no_duplicates_hold_nothing_and_resolve_yields_nothing(tmp_path: Path) -> None:
    finder = DuplicateFinder(("person",), tmp_path, 1 << 20)
    lake = pa.table({"person": [f"p{i}" for i in range(1000)]})
    assert finder.check(lake, lake.to_batches()[0], np.arange(1000), 0).all()
    assert list(finder.resolve(["person"])) == []
    assert (tmp_path / "written.hashes").stat().st_size == 8 * 1000


# Hashes that runs of the key index keep on disk (ingest/keyindex.py): a change to the hash
# would make every earlier run miss the keys it holds.
_PINNED = {"0000000000001": 0xA747466CF9433F11, "a" * 64: 0x864AC0DA290048C3, "short": 0xA47F9E6ACA115FC8,
           "exactly8": 0xEAD3A96ED14290BC, "\u00e9t\u00e9-12345": 0x17C1634C9A284F34}


def test_a_keys_hash_is_the_one_earlier_loads_kept() -> None:
    values = list(_PINNED)
    mixed = row_hashes(pa.table({"k": values}), ["k"])
    alone = [int(row_hashes(pa.table({"k": [value] * 3}), ["k"])[0]) for value in values]
    assert [int(h) for h in mixed] == alone == list(_PINNED.values())


def test_a_values_hash_does_not_depend_on_its_batch() -> None:
    """One length throughout a batch takes a faster path than mixed lengths: both hash a value alike."""
    rng = np.random.default_rng(9)
    letters = list("0123456789abcdefXYZ-. \u00e9")
    values = ["".join(rng.choice(letters, int(rng.integers(0, 30)))) for _ in range(3_000)]
    mixed = row_hashes(pa.table({"k": values}), ["k"])
    by_length: dict[int, list[str]] = {}
    for value in values:
        by_length.setdefault(len(value.encode()), []).append(value)
    expected = dict(zip(values, mixed.tolist(), strict=True))
    for group in by_length.values():
        equal = row_hashes(pa.table({"k": group}), ["k"])
        sliced = row_hashes(pa.table({"k": pa.array(["x", *group]).slice(1)}), ["k"])
        assert equal.tolist() == sliced.tolist() == [expected[value] for value in group]


def test_bloom_filter_has_no_false_negatives() -> None:
    bloom = BloomFilter(1 << 12)
    hashes = row_hashes(pa.table({"k": [str(i) for i in range(20_000)]}), ["k"])
    bloom.add(hashes[:10_000])
    assert bloom.contains(hashes[:10_000]).all()
    assert not bloom.contains(hashes[10_000:]).all()
    with pytest.raises(ValueError, match="power of two"):
        BloomFilter(24)


def test_filter_size_follows_the_file_up_to_its_cap() -> None:
    assert dedupe_bytes(0) == MIN_DEDUPE_BYTES
    assert dedupe_bytes(59 << 20) == 2 << 20
    assert dedupe_bytes(594 << 20) == 32 << 20
    assert dedupe_bytes(100 << 30) == 128 << 20
    assert dedupe_bytes(100 << 30, cap=100 << 20) == 64 << 20


def test_a_saturated_filter_splits_the_settling_by_hash_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dedupe, "SETTLE_BYTES", 1024)
    batches = _batches(11, count=6, size=1000, distinct=2500)
    kept, duplicates, held = _run(tmp_path, batches, 8)
    assert (kept, duplicates) == _expected(batches)
    assert held > 6 * 1000 * 16 / 1024  # enough held rows to need several ranges
    assert len(list(tmp_path.glob("part-*"))) >= 8


def test_spill_folders_of_dead_processes_are_removed(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from santelake.ingest.dedupe import SPILL_PREFIX, remove_stale_spills
    from santelake.lake.append import LOCAL_PREFIX

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    stale = tmp_path / f"{SPILL_PREFIX}{dead}-abc"
    stale_open_files = tmp_path / f"{LOCAL_PREFIX}{dead}-xyz"
    live = tmp_path / f"{SPILL_PREFIX}{os.getpid()}-def"
    live_open_files = tmp_path / f"{LOCAL_PREFIX}{os.getpid()}-uvw"
    other = tmp_path / "santelake-load-notapid"
    for folder in (stale, stale_open_files, live, live_open_files, other):
        folder.mkdir()
        (folder / "written.hashes").write_bytes(b"\0" * 8)
    assert remove_stale_spills(tmp_path) == [stale, stale_open_files]
    assert not stale.exists() and not stale_open_files.exists()
    assert live.exists() and live_open_files.exists() and other.exists()
