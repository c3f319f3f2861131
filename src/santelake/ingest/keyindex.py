"""A table's key hashes kept beside its data files, so a load's identity check need not read every key.

The identity check (``ingest.identity``) must find the staged keys the table already holds. Without
help it reads the key columns of every data file whose bounds overlap the file's keys, and hashes
them: for keys that interleave (pseudonyms, claim ids of many sources), that is the whole table,
about 1.9 s per 10 million rows on two cores.

Here each load also writes a *run*: the sorted, unique 64-bit key hashes of the data files it
adds (``ingest.dedupe.row_hashes``, the hashes the load computed anyway), as one Parquet column
(delta-encoded: about 5 bytes a row at 100 million rows), under ``<table>/santelake-keys/``.
Its footer names the data files it covers. A later load reads the runs of the live data files,
merges them with its own sorted hashes, and reads the keys of only:

- the data files of a run that shares a hash with the file (the file repeats some of them),
- the data files no run covers (written by Trino, by an erasure, by a release before the index).

A run only ever lets the check *skip* a file, and only when none of the file's hashes is in it:
its hashes are those of every row written into the files it covers (a superset when rows were
later deleted, which costs a read, never a miss). A run that covers no live file is never read;
an erasure removes the runs of the tables it rewrites with their other unreferenced objects.

Memory: one part of the file's hashes (at most ``PART_ROWS``) and one row group of a run.
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

INDEX_DIR = "santelake-keys"
FILES_KEY = b"santelake.files"
HASH = "h"
SIGN = np.uint64(1 << 63)
PART_ROWS = 1 << 23  # the file's hashes held in memory at a time: 64 MiB
ROW_GROUP = 1 << 20  # a run's hashes read at a time: 8 MiB
WORKERS = 2  # row groups of runs read and merged at once (the machine's cores)
BACKFILL_ROWS = 1 << 23  # hashes of files no run covers, gathered while the check reads them anyway
SORTED_LOOKUPS = 1024  # from this many values on, ``member`` sorts them before its binary searches


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``values`` sorted, each once (numpy 2.4's ``unique`` is twenty times slower on 10M int64)."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def member(values: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """Whether each of ``values`` is in ``ordered`` (sorted): a binary search each, so time grows
    with ``values``, not with ``ordered``. ``np.isin`` sorts both together on every call: asked
    batch by batch against a million hashes, it made a re-sent file's check quadratic (measured:
    a re-sent 1M-row beneficiaries file took 41 s)."""
    if not len(ordered):
        return np.zeros(len(values), dtype=bool)
    if len(values) < SORTED_LOOKUPS:
        where = np.minimum(np.searchsorted(ordered, values), len(ordered) - 1)
        return np.asarray(ordered[where] == values)
    # Looked up in ascending order, each search starts where the last ended and reads memory
    # nearby: 10M hashes against 10M took 6.7 s in random order, 1.8 s with this sort (numpy 2.4).
    order = np.argsort(values)
    ascending = values[order]
    where = np.minimum(np.searchsorted(ordered, ascending), len(ordered) - 1)
    found = np.empty(len(values), dtype=bool)
    found[order] = ordered[where] == ascending
    return found


def signed(hashes: np.ndarray) -> np.ndarray:
    """``row_hashes`` (uint64) as int64 in the same order (the top bit flipped): Parquet's ints are signed."""
    return np.asarray(hashes, dtype=np.uint64) ^ SIGN


def as_int64(hashes: np.ndarray) -> np.ndarray:
    return signed(hashes).view(np.int64)


@dataclass(frozen=True)
class Run:
    path: str
    files: frozenset[str]
    metadata: pq.FileMetaData = field(compare=False)  # its footer, read once when listed: a check opens the run with it

    @property
    def rows(self) -> int:
        return int(self.metadata.num_rows)


class FileHashes:
    """One load's key hashes, sorted and unique, in parts by their top bits (each part fits in memory).

    A file up to ``PART_ROWS`` rows stays in memory as one part; a larger one is spilled to
    ``spill_dir`` in 2^k parts, each sorted when it is read back.
    """

    def __init__(self, chunks: Iterable[np.ndarray], count: int, spill_dir: Path) -> None:
        self.bits = max(0, math.ceil(math.log2(count / PART_ROWS))) if count > PART_ROWS else 0
        if self.bits > 16:
            raise ValueError(f"{count:,} key hashes need {1 << self.bits:,} parts; at most 65,536 are written")
        self._memory: np.ndarray | None = None
        self._paths: list[Path] = []
        if not self.bits:
            parts = [as_int64(chunk) for chunk in chunks]
            self._memory = sorted_unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
            return
        self._paths = [spill_dir / f"keys-{index:05d}.hashes" for index in range(1 << self.bits)]
        outputs = [path.open("wb") for path in self._paths]
        try:
            shift = np.uint64(64 - self.bits)
            for chunk in chunks:
                values = as_int64(chunk)
                # As uint16, numpy's stable argsort is a radix sort: a fifth of the time of int64's.
                owner = (np.asarray(chunk, dtype=np.uint64) >> shift).astype(np.uint16)
                order = np.argsort(owner, kind="stable")
                bounds = np.searchsorted(owner[order], np.arange(len(outputs) + 1))
                for index, output in enumerate(outputs):
                    values[order[bounds[index]:bounds[index + 1]]].tofile(output)
        finally:
            for output in outputs:
                output.close()

    def parts(self, extra: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """Each part, sorted and unique, in ascending order: together, every hash once (and ``extra``'s).

        ``extra``: more hashes (``row_hashes``, uint64), each merged into the part its top bits name.
        """
        more = np.empty(0, dtype=np.uint64) if extra is None else sorted_unique(np.asarray(extra, dtype=np.uint64))
        if self._memory is not None:
            yield sorted_unique(np.concatenate([self._memory, as_int64(more)])) if len(more) else self._memory
            return
        bounds = np.searchsorted(more, np.arange(len(self._paths) + 1, dtype=np.uint64) << np.uint64(64 - self.bits))
        bounds[-1] = len(more)
        for index, path in enumerate(self._paths):
            mine = as_int64(more[bounds[index]:bounds[index + 1]])
            yield sorted_unique(np.concatenate([np.fromfile(path, dtype=np.int64), mine]))


def shares_a_hash(part: np.ndarray, run: np.ndarray) -> bool:
    """Whether the sorted arrays ``part`` and ``run`` have a value in common, in time linear in both.

    The part's values within the run's range and the run are merged (a stable sort of two sorted
    arrays is a single merge), then neighbours compared: 12 ns a value here, against 45 ns a
    lookup for a binary search of each.
    """
    if not len(part) or not len(run):
        return False
    low = int(np.searchsorted(part, run[0], side="left"))
    high = int(np.searchsorted(part, run[-1], side="right"))
    if low == high:
        return False
    both = np.concatenate([part[low:high], run])
    both.sort(kind="stable")
    return bool((both[1:] == both[:-1]).any())


def _overlaps(run: Run, group: int, part: np.ndarray) -> bool:
    """Whether row group ``group`` of ``run`` may hold a value of ``part`` (by its min and max)."""
    stats = run.metadata.row_group(group).column(0).statistics
    return stats is None or not stats.has_min_max or not (stats.max < int(part[0]) or stats.min > int(part[-1]))


class KeyIndex:
    """The runs of one table: listed, matched against a load's hashes, written."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.location = table.metadata.location.rstrip("/") + f"/{INDEX_DIR}/"

    def _fs(self) -> tuple[Any, str]:
        scheme, netloc, path = self.table.io.parse_location(self.location)
        return self.table.io.fs_by_scheme(scheme, netloc), path

    def runs(self) -> list[Run]:
        """Every run of the table, with the data files it covers (read from its footer)."""
        from pyarrow.fs import FileSelector, FileType

        fs, path = self._fs()
        found = []
        scheme = self.location.split("://", 1)[0]
        for info in fs.get_file_info(FileSelector(path, allow_not_found=True)):
            if info.type != FileType.File or not info.path.endswith(".parquet"):
                continue
            location = f"{scheme}://{info.path}"
            with self.table.io.new_input(location).open() as stream:
                metadata = pq.read_metadata(stream)
            files = json.loads((metadata.metadata or {}).get(FILES_KEY, b"[]"))
            found.append(Run(location, frozenset(files), metadata))
        return found

    def prune(self, live: set[str]) -> int:
        """Delete the runs that cover none of the ``live`` data files; how many. Always safe: a file
        no run covers is read by the check, never skipped."""
        dead = [run for run in self.runs() if not run.files & live]
        for run in dead:
            self.table.io.delete(run.path)
        return len(dead)

    def repeated(self, runs: list[Run], hashes: FileHashes) -> set[str]:
        """The runs (paths) holding at least one of ``hashes``; each row group of a run read at most
        once per part of ``hashes``, none after the run is known to hold one.

        ``WORKERS`` threads take the row groups in turn, each reading one (the store, Parquet's
        decoding) and merging it with the part (numpy's sort): both leave the GIL, so the check
        uses both cores, where one thread reading ahead of one merging left one core idle. Each
        thread opens the runs it reads itself (a Parquet reader is not shared between threads),
        with the footer ``runs()`` already read.
        """
        hit: set[str] = set()
        local = threading.local()
        opened: list[pq.ParquetFile] = []
        guard = threading.Lock()

        def check(run: Run, group: int, part: np.ndarray) -> None:
            if run.path in hit:
                return
            mine: dict[str, pq.ParquetFile] = local.__dict__.setdefault("files", {})
            if run.path not in mine:
                mine[run.path] = pq.ParquetFile(self.table.io.new_input(run.path).open(), metadata=run.metadata)
                with guard:
                    opened.append(mine[run.path])
            values = mine[run.path].read_row_group(group, columns=[HASH]).column(0).to_numpy()
            if shares_a_hash(part, values):
                hit.add(run.path)

        try:
            with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="key-index") as pool:
                for part in hashes.parts():
                    if not len(part):
                        continue
                    # Row groups of different runs alternate, so two threads rarely wait on one run.
                    wanted = sorted(((run, group) for run in runs if run.path not in hit
                                     for group in range(run.metadata.num_row_groups) if _overlaps(run, group, part)),
                                    key=lambda item: item[1])
                    for done in [pool.submit(check, run, group, part) for run, group in wanted]:
                        done.result()
        finally:
            for run in opened:
                run.close()
        return hit

    def write(self, files: list[str], parts: Iterable[np.ndarray]) -> str:
        """A run of ``parts`` (each sorted and unique as int64, in ascending order) covering ``files``."""
        location = f"{self.location}run-{uuid.uuid4().hex}.parquet"
        schema = pa.schema([(HASH, pa.int64())], metadata={FILES_KEY: json.dumps(sorted(files)).encode()})
        with self.table.io.new_output(location).create(overwrite=True) as stream, \
                pq.ParquetWriter(stream, schema, compression="none", use_dictionary=False,
                                 column_encoding={HASH: "DELTA_BINARY_PACKED"}) as writer:
            for part in parts:
                for start in range(0, len(part), ROW_GROUP):
                    writer.write_table(pa.table({HASH: part[start:start + ROW_GROUP]}, schema=schema),
                                       row_group_size=ROW_GROUP)
        return location
