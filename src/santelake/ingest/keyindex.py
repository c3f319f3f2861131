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

A ``RunCache`` keeps the runs' row groups decoded on the loader's local disk (8 bytes a hash),
filled as runs are written and read: a later check reads them from there, not through the
object store, TLS and Parquet's decoding. Runs never change once written (a new run has a new
name), so a cached row group is never stale; one that does not match its run's footer (size,
first and last hash) is dropped and read from the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
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

log = logging.getLogger(__name__)

INDEX_DIR = "santelake-keys"
FILES_KEY = b"santelake.files"
HASH = "h"
SIGN = np.uint64(1 << 63)
PART_ROWS = 1 << 23  # the file's hashes held in memory at a time: 64 MiB
PENDING = ".pending-"  # a run's cached groups while the run is written (``RunCache.put``)
ROW_GROUP = 1 << 20  # a run's hashes read at a time: 8 MiB
WORKERS = 2  # row groups of runs read and merged at once (the machine's cores)
BACKFILL_ROWS = 1 << 23  # hashes of files no run covers, gathered while the check reads them anyway
SORTED_LOOKUPS = 1024  # from this many values on, ``search`` sorts them before its binary searches


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``values`` sorted, each once (numpy 2.4's ``unique`` is twenty times slower on 10M int64)."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def search(ordered: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``np.searchsorted(ordered, values)``, the values looked up in ascending order from
    ``SORTED_LOOKUPS`` of them on: each search starts near the last one and reads memory nearby."""
    if len(values) < SORTED_LOOKUPS:
        return np.searchsorted(ordered, values)
    order = np.argsort(values)
    where = np.empty(len(values), dtype=np.intp)
    where[order] = np.searchsorted(ordered, values[order])
    return where


def member(values: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """Whether each of ``values`` is in ``ordered`` (sorted): a binary search each, so time grows
    with ``values``, not with ``ordered``. ``np.isin`` sorts both together on every call: asked
    batch by batch against a million hashes, it made a re-sent file's check quadratic (measured:
    a re-sent 1M-row beneficiaries file took 41 s)."""
    if not len(ordered):
        return np.zeros(len(values), dtype=bool)
    # ``search`` looks them up in ascending order: 10M hashes against 10M took 6.7 s in random
    # order, 1.8 s sorted first (numpy 2.4).
    where = np.minimum(search(ordered, values), len(ordered) - 1)
    return np.asarray(ordered[where] == values)


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


def _name(run_path: str) -> str:
    """A run's cache folder name: its file name (``run-<uuid4>.parquet``, unique to the run)."""
    return run_path.rsplit("/", 1)[-1].removesuffix(".parquet")


class RunCache:
    """Row groups of runs, decoded, in ``folder``: ``<table>/<run>/<group>.i64``, raw int64, at
    most ``limit`` bytes in all (the runs least recently used are removed first; 0 keeps nothing).
    ``<table>`` names the table's index location (a hash of it).

    A cache, never a source of truth: a group missing, unreadable or not matching its run's footer
    is read from the store, and a failure to write one only loses the speed-up. A run the store no
    longer lists (pruned, erased, dropped by a re-keying) is removed from it whenever its table's
    runs are listed; an erasure removes its tables' folders (``forget``). Several loads may share
    the folder: each group is written under a temporary name, then renamed.
    """

    SUFFIX = ".i64"

    def __init__(self, folder: Path, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"a key cache's size must be 0 or more bytes, not {limit}")
        self.folder = folder
        self.limit = limit

    def table_folder(self, index: str) -> Path:
        """The folder of the runs under ``index`` (a ``KeyIndex.location``)."""
        return self.folder / hashlib.sha256(index.encode()).hexdigest()[:24]

    def _run_folder(self, index: str, run_path: str, pending: bool = False) -> Path:
        return self.table_folder(index) / f"{PENDING if pending else ''}{_name(run_path)}"

    def _path(self, index: str, run_path: str, group: int, pending: bool = False) -> Path:
        return self._run_folder(index, run_path, pending) / f"{group:05d}{self.SUFFIX}"

    def get(self, index: str, run: Run, group: int) -> np.ndarray | None:
        """The group's hashes, if cached whole and matching the run's footer."""
        if not self.limit:
            return None
        path = self._path(index, run.path, group)
        meta = run.metadata.row_group(group)
        try:
            # Mapped, not copied: the merge reads it once, from the page cache.
            values = np.memmap(path, dtype=np.int64, mode="r") if path.stat().st_size else np.empty(0, np.int64)
            os.utime(path.parent)  # recently used: removed last
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("key cache: cannot read %s (%s); reading the run from the store", path, exc)
            return None
        stats = meta.column(0).statistics
        if len(values) != meta.num_rows or (
                len(values) and stats is not None and stats.has_min_max
                and (int(values[0]) != stats.min or int(values[-1]) != stats.max)):
            log.warning("key cache: %s does not match its run's footer; removed, the run is read from the store", path)
            path.unlink(missing_ok=True)
            return None
        return values

    def put(self, index: str, run_path: str, group: int, values: np.ndarray, pending: bool = False) -> None:
        """Keep a row group; ``pending``: of a run being written, not listed yet (``publish`` it once written)."""
        if not self.limit:
            return
        path = self._path(index, run_path, group, pending)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            np.ascontiguousarray(values, dtype=np.int64).tofile(temporary)
            os.replace(temporary, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            log.warning("key cache: cannot write %s (%s); later checks read this run from the store", path, exc)

    def publish(self, index: str, run_path: str) -> None:
        """The run's pending groups, kept as its own, now that the store holds it."""
        folder = self._run_folder(index, run_path)
        try:
            os.replace(self._run_folder(index, run_path, pending=True), folder)
        except FileNotFoundError:
            pass  # nothing was kept (the cache could not be written)
        except OSError as exc:
            log.warning("key cache: cannot keep %s (%s)", folder, exc)

    def sync(self, index: str, live: Iterable[str]) -> int:
        """Remove the cached runs under ``index`` that are not among the ``live`` run paths; how many.
        Runs still being written (``pending``) are left to their writer."""
        keep = {_name(path) for path in live}
        gone = [entry.path for entry in self._entries(self.table_folder(index))
                if entry.name not in keep and not entry.name.startswith(PENDING)]
        for path in gone:
            shutil.rmtree(path, ignore_errors=True)
        return len(gone)

    def forget(self, index: str) -> None:
        """Remove every cached run under ``index`` (an erasure's step: a failure is raised, not logged)."""
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.table_folder(index))

    def _entries(self, folder: Path | str) -> list[os.DirEntry[str]]:
        try:
            return [entry for entry in os.scandir(folder) if entry.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.warning("key cache: cannot list %s (%s)", folder, exc)
            return []

    def trim(self) -> int:
        """Remove the least recently used runs until the cache holds at most ``limit`` bytes; how many."""
        runs = []
        for table in self._entries(self.folder):
            for entry in self._entries(table.path):
                try:
                    size = sum(item.stat().st_size for item in os.scandir(entry.path) if item.is_file())
                    runs.append((entry.stat().st_mtime, size, entry.path))
                except FileNotFoundError:
                    continue  # removed meanwhile by another load's trim
        total = sum(size for _, size, _ in runs)
        removed = 0
        for _, size, path in sorted(runs):
            if total <= self.limit:
                break
            shutil.rmtree(path, ignore_errors=True)
            total -= size
            removed += 1
        return removed


class KeyIndex:
    """The runs of one table: listed, matched against a load's hashes, written."""

    def __init__(self, table: Any, cache: RunCache | None = None) -> None:
        self.table = table
        self.cache = cache
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
        if self.cache:
            self.cache.sync(self.location, [run.path for run in found])
        return found

    def prune(self, live: set[str]) -> int:
        """Delete the runs that cover none of the ``live`` data files; how many. Always safe: a file
        no run covers is read by the check, never skipped."""
        runs = self.runs()
        dead = [run for run in runs if not run.files & live]
        for run in dead:
            self.table.io.delete(run.path)
        if self.cache:
            self.cache.sync(self.location, [run.path for run in runs if run not in dead])
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
            values = self.cache.get(self.location, run, group) if self.cache else None
            if values is None:
                mine: dict[str, pq.ParquetFile] = local.__dict__.setdefault("files", {})
                if run.path not in mine:
                    mine[run.path] = pq.ParquetFile(self.table.io.new_input(run.path).open(), metadata=run.metadata)
                    with guard:
                        opened.append(mine[run.path])
                values = mine[run.path].read_row_group(group, columns=[HASH]).column(0).to_numpy()
                if self.cache:
                    self.cache.put(self.location, run.path, group, values)
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
            if self.cache:
                self.cache.trim()
        return hit

    def write(self, files: list[str], parts: Iterable[np.ndarray]) -> str:
        """A run of ``parts`` (each sorted and unique as int64, in ascending order) covering ``files``."""
        location = f"{self.location}run-{uuid.uuid4().hex}.parquet"
        schema = pa.schema([(HASH, pa.int64())], metadata={FILES_KEY: json.dumps(sorted(files)).encode()})
        with self.table.io.new_output(location).create(overwrite=True) as stream, \
                pq.ParquetWriter(stream, schema, compression="none", use_dictionary=False,
                                 column_encoding={HASH: "DELTA_BINARY_PACKED"}) as writer:
            group = 0
            for part in parts:
                for start in range(0, len(part), ROW_GROUP):
                    writer.write_table(pa.table({HASH: part[start:start + ROW_GROUP]}, schema=schema),
                                       row_group_size=ROW_GROUP)
                    if self.cache:
                        self.cache.put(self.location, location, group, part[start:start + ROW_GROUP], pending=True)
                    group += 1
        if self.cache:
            self.cache.publish(self.location, location)
            self.cache.trim()
        return location

    def forget_cached(self) -> None:
        """Remove this table's runs from the local cache (an erasure deletes them from the store)."""
        if self.cache:
            self.cache.forget(self.location)
