"""The rows a load sets aside, kept in bounded memory whatever their number.

A file can break a rule on every row (a column in the wrong date format, say): it is then
rejected, but only once read to the end, and every row it set aside is kept for review.
Held in Python lists, 305 million such rows would need tens of GB before the rejection;
here at most ``memory_rows`` stay in memory and the rest go to an Arrow file on disk,
read back a batch at a time when the quarantine is written.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa

DEFAULT_MEMORY_ROWS = 65_536
SCHEMA = pa.schema([("row_number", pa.int64()), ("rule", pa.string()), ("raw_reference", pa.string()),
                    ("earlier_file", pa.string())])


class Quarantine:
    """Row numbers, broken rules, raw references (and, for a key loaded before, the earlier file), in the
    order added; spilled past ``memory_rows``."""

    def __init__(self, spill_dir: Path | None = None, memory_rows: int = DEFAULT_MEMORY_ROWS) -> None:
        if memory_rows < 1:
            raise ValueError(f"memory_rows must be at least 1, not {memory_rows}")
        self.spill_dir = spill_dir
        self.memory_rows = memory_rows
        self.by_rule: Counter[str] = Counter()
        self._rows: list[int] = []
        self._rules: list[str] = []
        self._references: list[str | None] = []
        self._earlier: list[str | None] = []
        self._count = 0
        self._spill: Path | None = None
        self._writer: pa.ipc.RecordBatchFileWriter | None = None
        self._read = False

    def __len__(self) -> int:
        return self._count

    def add(self, rows: Sequence[int], rules: Sequence[str], references: Sequence[str | None],
            earlier: Sequence[str | None] | None = None) -> None:
        if self._read:
            raise RuntimeError("rows added to a quarantine already read back")
        earlier = [None] * len(rows) if earlier is None else earlier
        if not len(rows) == len(rules) == len(references) == len(earlier):
            raise ValueError(f"{len(rows)} rows, {len(rules)} rules, {len(references)} references and "
                             f"{len(earlier)} earlier files")
        self._rows += rows
        self._rules += rules
        self._references += references
        self._earlier += earlier
        self._count += len(rows)
        self.by_rule.update(rules)
        if len(self._rows) >= self.memory_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        if self._writer is None:
            handle, name = tempfile.mkstemp(prefix="santelake-quarantine-", suffix=".arrow", dir=self.spill_dir)
            os.close(handle)
            self._spill = Path(name)
            self._writer = pa.ipc.new_file(str(self._spill), SCHEMA)
        self._writer.write_batch(self._batch())
        self._rows, self._rules, self._references, self._earlier = [], [], [], []

    def _batch(self) -> pa.RecordBatch:
        return pa.record_batch([pa.array(self._rows, pa.int64()), pa.array(self._rules, pa.string()),
                                pa.array(self._references, pa.string()), pa.array(self._earlier, pa.string())],
                               schema=SCHEMA)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Every row set aside, in the order added, a batch of at most ``memory_rows`` at a time."""
        self._read = True
        if self._writer is not None:
            self._flush()
            self._writer.close()
            self._writer = None
        if self._spill is not None:
            # Read, not mapped: a mapped file's pages would count in the process's memory.
            with pa.OSFile(str(self._spill)) as source:
                reader = pa.ipc.open_file(source)
                for index in range(reader.num_record_batches):
                    yield reader.get_batch(index)
        elif self._rows:
            yield self._batch()

    def counts(self, top: int = 8) -> str:
        """The rules broken most often, with their counts: ``rule x12, other x3``."""
        return ", ".join(f"{rule} x{n}" for rule, n in self.by_rule.most_common(top))

    def __enter__(self) -> Quarantine:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the spill file, if any."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._spill is not None:
            self._spill.unlink(missing_ok=True)
            self._spill = None
