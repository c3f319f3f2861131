"""Exact duplicate rows in a file of any size, in memory that does not grow with the file.

A row is a duplicate when its key (the table's identifier fields, else every lake column)
hashes like the key of an earlier row of the same file. Each batch goes through:

- a Bloom filter of every key seen so far (fixed size, one 64-bit word a key): a key it
  has never seen is new, for certain, so the row is written at once and its hash appended
  to a spill file on disk;
- the rest (a key repeated within the batch, or one the filter may have seen: the true
  duplicates plus the filter's few false positives) is *held*: spilled to a Parquet file
  with its raw row and row number, not written.

At the end, :meth:`DuplicateFinder.resolve` settles the held rows exactly. A held row is a
duplicate when its hash is among the written rows' hashes (a written row always comes
first: any later row with its key finds it in the filter), or when an earlier held row
has the same hash. Held rows that are not duplicates are published after all.

Memory: the filter (``bloom_bytes``) plus one batch; on disk, 8 bytes a written row and the
held rows. The held rows are the duplicates plus about the filter's false-positive rate
(well under 1% until about 40 million rows per 64 MiB of filter).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from santelake.ingest.source import as_text, open_parquet
from santelake.lake.append import LOCAL_PREFIX
from santelake.pseudonymise.parse import text_buffers

ROW = "__row"
HASH = "__hash"
RAW_PREFIX = "raw:"
SCAN_HASHES = 1 << 20  # hashes read at a time when settling the held rows: 8 MiB
SETTLE_BYTES = 16 << 20  # held rows settled at a time (16 bytes each, a few times that while sorting)

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_NULL = np.uint64(0x5BD1E9955BD1E995)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place on ``x`` (which it returns): every input bit moves every output bit."""
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def _padded_words(text: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Each value's bytes, zero-padded to whole 64-bit words: one row per value."""
    lengths = np.diff(offsets)
    count = len(lengths)
    longest = int(lengths.max()) if count else 0
    width = max(1, -(-longest // 8)) * 8
    padded = np.zeros((count, width), dtype=np.uint8)
    if count and int(lengths.min()) == longest:
        padded[:, :longest] = text.reshape(count, longest)
    else:
        # Values of varying width: scatter each byte to its row.
        starts = np.repeat(np.arange(count, dtype=np.int64) * width - (offsets[:-1] - offsets[0]), lengths)
        padded.reshape(-1)[starts + np.arange(len(text), dtype=np.int64)] = text
    return padded.view(np.uint64)


def _equal_length_words(text: np.ndarray, count: int, length: int) -> list[np.ndarray] | None:
    """``_padded_words``'s columns for ``count`` values of ``length`` bytes each, read in place.

    Each whole word is a strided view of the text; the last, partial one is the value's last
    eight bytes shifted down (little-endian: the bytes before it fall off, zeros come in). No
    copy of the text, where the padded matrix copied it row by row (0.6-1.2 ms for 65,536
    claim ids, of about 3 ms for their hashes). None when a value is shorter than a word.
    """
    if length < 8 or sys.byteorder != "little":
        return None
    words = []
    for start in range(0, length, 8):
        if start + 8 <= length:
            words.append(np.ndarray((count,), np.uint64, text, start, (length,)))
        else:
            last = np.ndarray((count,), np.uint64, text, length - 8, (length,))
            words.append(last >> np.uint64(8 * (start + 8 - length)))
    return words


def _column_hashes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash of each value, the same whatever the batch it comes in; text of non-text types."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if not (pa.types.is_string(array.type) or pa.types.is_binary(array.type)):
        array = array.cast(pa.large_binary()) if pa.types.is_large_string(array.type) or \
            pa.types.is_large_binary(array.type) else array.cast(pa.string())
    text, offsets = text_buffers(array)
    lengths = np.diff(offsets)
    equal = bool(len(lengths)) and int(lengths.min()) == int(lengths.max())
    words = _equal_length_words(text, len(lengths), int(lengths[0])) if equal else None
    if words is None:
        padded = _padded_words(text, offsets)
        words = [padded[:, word] for word in range(padded.shape[1])]
    used = -(-lengths // 8)
    hashes = _mix(lengths.astype(np.uint64) * _GOLDEN)
    uniform = not len(used) or int(used.min()) == int(used.max())
    for word, part in enumerate(words):
        mixed = _mix(hashes ^ part)
        # Values of equal width in words (codes, ids) use every word: no row to leave as it was.
        hashes = mixed if uniform else np.where(word < used, mixed, hashes)
    if array.null_count:
        hashes[np.asarray(array.is_null())] = _NULL
    return hashes


def row_hashes(table: pa.Table, keys: list[str]) -> np.ndarray:
    """A 64-bit hash of each row's ``keys``, computed on the Arrow buffers (no pandas copy)."""
    hashes = np.zeros(table.num_rows, dtype=np.uint64)
    for key in keys:
        hashes = _mix(hashes * _GOLDEN + _column_hashes(table[key]))
    return hashes


# The duplicate check's Bloom filter: sized from the file (about 16 bits a row of 60 bytes),
# at most this; past it a large file costs more rows held back, never more memory.
DEFAULT_DEDUPE_BYTES = 128 << 20
MIN_DEDUPE_BYTES = 1 << 20


SPILL_PREFIX = "santelake-load-"


def remove_stale_spills(parent: Path) -> list[Path]:
    """Remove the spill folders of loads whose process is gone (killed before it could clean up).

    Also the folders of data files a writer had open (``lake.append``) that are not inside a
    load's spill folder: a quarantine's (beside it), an erasure's (under $TMPDIR).
    """
    removed = []
    for prefix in (SPILL_PREFIX, LOCAL_PREFIX):
        for folder in parent.glob(f"{prefix}*-*"):
            pid = folder.name[len(prefix):].split("-", 1)[0]
            if not pid.isdigit():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
            except PermissionError:
                pass  # another user's live process
    return removed


def dedupe_bytes(file_bytes: int, cap: int = DEFAULT_DEDUPE_BYTES) -> int:
    """The Bloom filter size for a file of ``file_bytes``: a power of two in [1 MiB, ``cap``]."""
    wanted = max(MIN_DEDUPE_BYTES, file_bytes // 32)
    size = 1 << (wanted - 1).bit_length()
    return max(MIN_DEDUPE_BYTES, min(size, 1 << (cap.bit_length() - 1)))


class BloomFilter:
    """A blocked Bloom filter: each hash sets four bits of one 64-bit word; never a false negative."""

    def __init__(self, size_bytes: int) -> None:
        words = max(1, size_bytes // 8)
        if words & (words - 1):
            raise ValueError(f"a Bloom filter of {size_bytes} bytes: the size must be a power of two")
        self.words = np.zeros(words, dtype=np.uint64)

    def _slots(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        word = hashes >> np.uint64(32)
        word &= np.uint64(len(self.words) - 1)
        # Four bits of the word, from four 6-bit slices of the hash's low half.
        one = np.uint64(1)
        mask = one << (hashes & np.uint64(63))
        for shift in (6, 12, 18):
            mask |= one << ((hashes >> np.uint64(shift)) & np.uint64(63))
        return word.astype(np.intp), mask

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        word, mask = self._slots(hashes)
        return np.asarray((self.words[word] & mask) == mask)

    def add(self, hashes: np.ndarray) -> np.ndarray:
        """Add the hashes; returns which of them the filter held already (as ``contains`` would have)."""
        word, mask = self._slots(hashes)
        before = self.words[word]
        seen = np.asarray((before & mask) == mask)
        self.words[word] = before | mask
        # Where two hashes of the batch share a word, the fancy assignment kept only one of
        # them: set those again, one by one (few).
        lost = (self.words[word] & mask) != mask
        if lost.any():
            np.bitwise_or.at(self.words, word[lost], mask[lost])
        return seen


@dataclass(frozen=True)
class Settled:
    """One stretch of held rows, settled: those to publish after all, and the duplicates."""

    publish: pa.Table
    duplicates: pa.Table  # the raw rows (their source column names)
    duplicate_rows: list[int]


class DuplicateFinder:
    """Finds the rows of one file whose key came earlier in it; see the module's docstring."""

    def __init__(self, keys: tuple[str, ...] | list[str], spill_dir: Path, bloom_bytes: int) -> None:
        self.keys = list(keys)
        self.spill_dir = spill_dir
        self.bloom = BloomFilter(bloom_bytes)
        # Every key of the file: resolve() frees ``bloom`` for the settling, and a load that
        # checks its keys against the table's earlier loads (``ingest.identity``) keeps this.
        self.seen = self.bloom
        self._written: BinaryIO = (spill_dir / "written.hashes").open("wb")
        # The file's row number of each written hash, in the same order.
        self._written_rows: BinaryIO = (spill_dir / "written.rows").open("wb")
        # (hash, row number) of the held rows published after all.
        self._late: list[tuple[np.ndarray, np.ndarray]] = []
        self._held: pq.ParquetWriter | None = None
        self.held = 0

    @classmethod
    @contextlib.contextmanager
    def spilling(cls, keys: tuple[str, ...], parent: Path | None, bloom_bytes: int) -> Iterator[DuplicateFinder]:
        """A finder spilling into a fresh folder under ``parent`` ($TMPDIR if None), removed afterwards."""
        remove_stale_spills(Path(parent or tempfile.gettempdir()))
        with tempfile.TemporaryDirectory(prefix=f"{SPILL_PREFIX}{os.getpid()}-", dir=parent) as spill:
            finder = cls(keys, Path(spill), bloom_bytes)
            try:
                yield finder
            finally:
                finder.close()

    @property
    def held_path(self) -> Path:
        return self.spill_dir / "held.parquet"

    def check(self, lake: pa.Table, raw: pa.RecordBatch | pa.Table, positions: np.ndarray, offset: int) -> np.ndarray:
        """Mask of the rows of ``lake`` to write now; the others are held until :meth:`resolve`.

        Row ``i`` of ``lake`` was row ``positions[i]`` of ``raw`` (the batch as read, kept for
        the quarantine's reference), which is row ``offset + positions[i] + 1`` of the file.
        """
        hashes = row_hashes(lake, self.keys)
        # A key repeated within the batch holds every row that has it, the first too (few;
        # resolve() keeps the first): a plain sort finds them faster than a stable argsort.
        ordered = np.sort(hashes)
        repeats = ordered[1:][ordered[1:] == ordered[:-1]]
        hold = self.bloom.add(hashes)
        if len(repeats):
            hold |= np.isin(hashes, repeats)
        write: np.ndarray = ~hold
        self._written.write(hashes[write].tobytes())
        self._written_rows.write((offset + positions[write] + 1).astype(np.int64).tobytes())
        if hold.any():
            self._hold(lake, raw, positions, offset, hashes, hold)
        return write

    def _hold(self, lake: pa.Table, raw: pa.RecordBatch | pa.Table, positions: np.ndarray, offset: int,
              hashes: np.ndarray, hold: np.ndarray) -> None:
        picked = pa.array(np.flatnonzero(hold))
        in_raw = pa.array(positions[hold])
        columns = {name: lake[name].take(picked) for name in lake.column_names}
        # The raw columns as text: a file whose typed reading fell back to text halfway
        # through gives both kinds of batch, and the held rows' file has one schema.
        columns |= {RAW_PREFIX + name: as_text(raw.column(name).take(in_raw)) for name in raw.schema.names}
        columns[ROW] = pa.array(offset + positions[hold] + 1, pa.int64())
        columns[HASH] = pa.array(hashes[hold], pa.uint64())
        table = pa.table(columns)
        if self._held is None:
            self._held = pq.ParquetWriter(self.held_path, table.schema)
        self._held.write_table(table)
        self.held += table.num_rows

    def resolve(self, lake_columns: list[str]) -> Iterator[Settled]:
        """Settle the held rows, in file order, one stretch at a time."""
        self._written.close()
        self._written_rows.close()
        self.bloom = BloomFilter(8)  # no longer asked: give its memory to the settling
        if self._held is None:
            return
        self._held.close()
        held = open_parquet(self.held_path)
        duplicate_rows = np.sort(np.concatenate([
            self._settle(hashes, rows, written) for hashes, rows, written in self._partitions(held)]))
        for batch in held.iter_batches():
            rows = batch.column(ROW).to_numpy()
            where = np.minimum(np.searchsorted(duplicate_rows, rows), max(len(duplicate_rows) - 1, 0))
            mine = duplicate_rows[where] == rows if len(duplicate_rows) else np.zeros(len(rows), dtype=bool)
            table = pa.Table.from_batches([batch])
            raw = [name for name in table.column_names if name.startswith(RAW_PREFIX)]
            dupes = table.filter(pa.array(mine))
            self._late.append((batch.column(HASH).to_numpy()[~mine], rows[~mine]))
            yield Settled(
                publish=table.filter(pa.array(~mine)).select(lake_columns),
                duplicates=dupes.select(raw).rename_columns([name[len(RAW_PREFIX):] for name in raw]),
                duplicate_rows=dupes[ROW].to_pylist(),
            )

    def _partitions(self, held: pq.ParquetFile) -> Iterator[tuple[np.ndarray, np.ndarray, Path]]:
        """(held hashes, their row numbers, the written hashes' file) of each hash range.

        One range when the held rows fit ``SETTLE_BYTES`` (the usual case); else both spills
        are split once by the hashes' top bits, so each range is settled in that much memory.
        """
        bits = max(0, math.ceil(math.log2(max(1.0, held.metadata.num_rows * 16 / SETTLE_BYTES))))
        written = self.spill_dir / "written.hashes"
        if bits == 0:
            both = held.read(columns=[HASH, ROW])
            yield both[HASH].to_numpy(), both[ROW].to_numpy(), written
            return
        shift = np.uint64(64 - bits)
        parts = [self.spill_dir / f"part-{p}" for p in range(1 << bits)]
        for part in parts:
            part.mkdir()
        with contextlib.ExitStack() as files:
            held_out: list[tuple[BinaryIO, BinaryIO]] = [(files.enter_context((part / "held.hashes").open("wb")),
                         files.enter_context((part / "held.rows").open("wb"))) for part in parts]
            for batch in held.iter_batches(columns=[HASH, ROW]):
                hashes, rows = batch.column(HASH).to_numpy(), batch.column(ROW).to_numpy()
                self._split(hashes >> shift, [(hashes, [h for h, _ in held_out]), (rows, [r for _, r in held_out])])
            written_out: list[BinaryIO] = [files.enter_context((part / "written.hashes").open("wb")) for part in parts]
            with written.open("rb") as spill:
                while len(chunk := np.fromfile(spill, dtype=np.uint64, count=SCAN_HASHES)):
                    self._split(chunk >> shift, [(chunk, written_out)])
        for part in parts:
            yield (np.fromfile(part / "held.hashes", dtype=np.uint64), np.fromfile(part / "held.rows", dtype=np.int64),
                   part / "written.hashes")

    @staticmethod
    def _split(part_of: np.ndarray, columns: list[tuple[np.ndarray, list[BinaryIO]]]) -> None:
        """Append each value of each column to the file of its row's part (order kept within a part)."""
        order = np.argsort(part_of, kind="stable")
        bounds = np.searchsorted(part_of[order], np.arange(len(columns[0][1]) + 1, dtype=np.uint64))
        for values, outs in columns:
            ordered = values[order]
            for p, out in enumerate(outs):
                if bounds[p + 1] > bounds[p]:
                    out.write(ordered[bounds[p]: bounds[p + 1]].tobytes())

    @staticmethod
    def _settle(hashes: np.ndarray, rows: np.ndarray, written: Path) -> np.ndarray:
        """Row numbers of the held rows (``hashes``, ``rows``, in file order) that are duplicates."""
        if not len(hashes):
            return np.empty(0, dtype=np.int64)
        unique, first = np.unique(hashes, return_index=True)
        seen = np.zeros(len(unique), dtype=bool)
        # A small filter of the held hashes skips almost every written one before the search.
        held_filter = BloomFilter(1 << max(6, (len(unique) * 16 - 1).bit_length()))
        held_filter.add(unique)
        with written.open("rb") as spill:
            while len(chunk := np.fromfile(spill, dtype=np.uint64, count=SCAN_HASHES)):
                chunk = chunk[held_filter.contains(chunk)]
                where = np.minimum(np.searchsorted(unique, chunk), len(unique) - 1)
                seen[where[unique[where] == chunk]] = True
        duplicate = np.ones(len(hashes), dtype=bool)
        duplicate[first] = False
        duplicate |= seen[np.searchsorted(unique, hashes)]
        return np.asarray(rows[duplicate], dtype=np.int64)

    def published(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(key hashes, row numbers) of every row published, a chunk at a time; after :meth:`resolve`.

        Within one file a key hash is published once: a later row with the same hash is a duplicate.
        """
        with (self.spill_dir / "written.hashes").open("rb") as hashes, \
                (self.spill_dir / "written.rows").open("rb") as rows:
            while len(chunk := np.fromfile(hashes, dtype=np.uint64, count=SCAN_HASHES)):
                yield chunk, np.fromfile(rows, dtype=np.int64, count=len(chunk))
        yield from self._late

    def published_count(self) -> int:
        """How many hashes :meth:`published` yields; after :meth:`resolve`."""
        return (self.spill_dir / "written.hashes").stat().st_size // 8 + sum(len(hashes) for hashes, _ in self._late)

    def close(self) -> None:
        self._written.close()
        self._written_rows.close()
        if self._held is not None:
            self._held.close()
