"""The quarantine bookkeeping: bounded memory, spilled to disk, read back whole and in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from santelake.ingest.quarantine import Quarantine


def _added(quarantine: Quarantine, count: int) -> None:
    for start in range(0, count, 7):
        rows = list(range(start, min(start + 7, count)))
        quarantine.add(rows, [f"rule{r % 3}" for r in rows], [f"ref{r}" for r in rows])


@pytest.mark.parametrize(("count", "memory_rows"), [(0, 5), (4, 5), (5, 5), (103, 5), (103, 1000)])
def test_every_row_comes_back_in_order_and_the_spill_file_goes(tmp_path: Path, count: int, memory_rows: int) -> None:
    with Quarantine(tmp_path, memory_rows) as quarantine:
        _added(quarantine, count)
        assert len(quarantine) == count
        spilled = list(tmp_path.iterdir())
        assert bool(spilled) == (count >= memory_rows)  # on disk only past the memory budget
        rows, rules, references = [], [], []
        for batch in quarantine.batches():
            assert batch.num_rows <= max(memory_rows, 7) + 6
            rows += batch.column("row_number").to_pylist()
            rules += batch.column("rule").to_pylist()
            references += batch.column("raw_reference").to_pylist()
        assert rows == list(range(count))
        assert rules == [f"rule{r % 3}" for r in range(count)]
        assert references == [f"ref{r}" for r in range(count)]
        if count:
            assert quarantine.counts().startswith("rule0 x")
    assert list(tmp_path.iterdir()) == []


def test_mismatched_lists_and_adding_after_reading_are_refused(tmp_path: Path) -> None:
    with Quarantine(tmp_path, 5) as quarantine:
        with pytest.raises(ValueError, match="2 rows, 1 rules, 2 references and 2 earlier files"):
            quarantine.add([1, 2], ["a"], ["x", "y"])
        quarantine.add([1], ["a"], ["x"])
        list(quarantine.batches())
        with pytest.raises(RuntimeError, match="already read back"):
            quarantine.add([2], ["a"], ["y"])


def test_counts_name_the_most_broken_rules_first(tmp_path: Path) -> None:
    with Quarantine(tmp_path) as quarantine:
        quarantine.add([1, 2, 3, 4], ["b", "a", "a", "c"], ["1", "2", "3", "4"])
        assert quarantine.counts() == "a x2, b x1, c x1"
        assert quarantine.counts(top=1) == "a x2"
