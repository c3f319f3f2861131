"""A table's key holds across loads: a row whose key an earlier load published is settled, not doubled.

A load stages its rows as data files (nothing visible yet), each key once within the file
(``ingest.dedupe``). Before the commit, this module finds the staged keys the table already
holds, exactly, in memory that grows with neither the file nor the table:

1. The table's identifier columns are read a data file at a time, and each key's hash is
   probed against the file's Bloom filter of its own keys (``DuplicateFinder.seen``). A data
   file the table's key index covers (``ingest.keyindex``: the sorted key hashes each load
   writes beside its data files) is read only when the index shares a hash with the file. A key
   the filter never saw is not in the file, for certain; the rest (the repeats, plus the
   filter's few false positives) are kept as candidates.
2. The candidates' hashes are matched against the published rows' hashes, read back from the
   load's spill; then the matched keys are compared exactly, value by value, with the staged
   rows that carry them. Only those are repeats.
3. However many rows repeat (a whole extract re-sent), they are settled by ranges of their key
   hash, at most ``SLICE_ROWS`` keys at a time: one pass over the table's files holding them and
   one over the staged files set their rows aside in the load's spill folder (Arrow files, one
   per range); each range is read back and settled alone, and what it decides (rows left out,
   by data file and position) is applied once, after the last range.

What a repeat means is the table's ``on_repeat`` (``iceberg_schemas/``):

- ``refuse`` (event tables): the staged row is taken out and set aside in quarantine, rule
  ``already_loaded``, naming the earlier file whose load published the key.
- ``keep_latest`` (reference tables): a staged row identical to the table's is taken out
  (unchanged); a different one is published and the table's data files holding the old row
  are rewritten without it, in the same commit (copy-on-write: readers need no delete files).
  The previous state stays reachable by time travel.

Staged files that lose rows are rewritten and the old ones removed (they were never visible).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.conversions import from_bytes
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, GreaterThanOrEqual, LessThanOrEqual
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.manifest import ManifestContent

from santelake.ingest.dedupe import BloomFilter, DuplicateFinder, row_hashes
from santelake.ingest.keyindex import (
    BACKFILL_ROWS,
    FileHashes,
    KeyIndex,
    RunCache,
    as_int64,
    member,
    search,
    sorted_unique,
)
from santelake.lake.append import ChunkedAppend
from santelake.schema import OnRepeat, TableSchema

ALREADY_LOADED = "already_loaded"
SOURCE_FILE = "santelake.source-file"  # the snapshot property naming the file a load published
WHERE = "__file"  # the staged data file (its index) a repeated row is in
LAKE_FILE = "__lake_file"  # the table's data file (its index) holding an earlier row of the key
POSITION = "__position"  # a row's place in its data file
SLICE_ROWS = 1 << 18  # repeated keys settled at a time (their staged and table rows in memory)
PERSON = "person_id"


@dataclass
class Repeats:
    """What the check found and did; the counts go to the file's record."""

    updated: int = 0  # published, replacing the table's row under the same key
    unchanged: int = 0  # identical to the table's row: not published again
    refused: int = 0  # set aside in quarantine, a range at a time (``SetAside``), never all held here
    # The lowest row number refused and the earlier file holding its key, for the load's message.
    first_refused: tuple[int, str] | None = None
    # Key hashes of the table's rows this load writes again (a file rewritten without its
    # replaced rows): the load's run of the key index covers them too.
    rewritten: list[np.ndarray] = field(default_factory=list)


# Where refused rows go as each range is settled: their row numbers, raw references (the person's
# pseudonym, if the table has one) and the earlier file holding each one's key.
SetAside = Callable[[list[int], list[str | None], list[str]], None]


def _staged_range(table: Any, keys: list[str], staged: list[Any]) -> BooleanExpression:
    """Each key column between the least and the greatest value staged (from the staged files' metrics).

    The table's data files whose bounds fall outside are not read (pyiceberg prunes them by their
    manifests' metrics): a later extract of increasing ids reads no earlier file at all.
    """
    condition: BooleanExpression = AlwaysTrue()
    schema = table.schema()
    for key in keys:
        field = schema.find_field(key)
        lows = [f.lower_bounds.get(field.field_id) for f in staged]
        highs = [f.upper_bounds.get(field.field_id) for f in staged]
        if not staged or any(b is None for b in lows) or any(b is None for b in highs):
            continue  # a file without metrics for the column: no bound, read everything
        low = min(from_bytes(field.field_type, b) for b in lows if b is not None)
        high = max(from_bytes(field.field_type, b) for b in highs if b is not None)
        # pyiceberg's predicates take (term, literal) at run time; their pydantic fields type otherwise.
        at_least = GreaterThanOrEqual(key, low)  # type: ignore[call-arg,arg-type]
        at_most = LessThanOrEqual(key, high)  # type: ignore[call-arg,arg-type]
        condition = And(condition, And(at_least, at_most))
    return condition


def _scan_tasks(table: Any, columns: tuple[str, ...],
                condition: BooleanExpression | None = None) -> tuple[Any, list[Any]]:
    scan = table.scan(selected_fields=columns, row_filter=condition if condition is not None else AlwaysTrue())
    reader = ArrowScan(table.metadata, table.io, scan.projection(), scan.row_filter, scan.case_sensitive)
    return reader, list(scan.plan_files())


def _candidates(reader: Any, tasks: list[Any], keys: list[str], seen: BloomFilter, whole: Any = None,
                unindexed: frozenset[str] | set[str] = frozenset()) -> tuple[np.ndarray, np.ndarray,
                                                                               dict[str, np.ndarray]]:
    """Hash and data file (index in ``tasks``) of each table row whose key the file's filter may hold.

    Twelve bytes a candidate: the repeats plus the filter's false positives, never the table.
    The files in ``unindexed`` (no run of the key index covers them) are read whole by ``whole``,
    and their hashes kept, up to ``BACKFILL_ROWS`` in all, for a run of their own (the third value).
    """
    hashes: list[np.ndarray] = []
    where: list[np.ndarray] = []
    gathered: dict[str, np.ndarray] = {}
    room = BACKFILL_ROWS
    for index, task in enumerate(tasks):
        path = task.file.file_path
        backfill = whole is not None and path in unindexed and task.file.record_count <= room
        mine = []
        for batch in (whole if backfill else reader).to_record_batches([task]):
            batch_hashes = row_hashes(pa.Table.from_batches([batch]), keys)
            if backfill:
                mine.append(batch_hashes)
            hit = seen.contains(batch_hashes)
            if hit.any():
                hashes.append(batch_hashes[hit])
                where.append(np.full(int(hit.sum()), index, dtype=np.int32))
        if backfill and not task.delete_files:
            gathered[path] = np.concatenate(mine) if mine else np.empty(0, dtype=np.uint64)
            room -= len(gathered[path])
    if not hashes:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int32), gathered
    return np.concatenate(hashes), np.concatenate(where), gathered


def _indexed(table: Any, tasks: list[Any], hashes: FileHashes | None,
             cache: RunCache | None = None) -> tuple[list[Any], set[str]]:
    """The tasks whose data files must be read, and those of them no run of the key index covers.

    A file a run covers is skipped when that run holds none of the load's ``hashes``.
    """
    paths = {task.file.file_path for task in tasks}
    if hashes is None or not paths:
        return tasks, paths
    index = KeyIndex(table, cache)
    runs = [run for run in index.runs() if run.files & paths]
    covered = set().union(*(run.files for run in runs)) & paths
    repeated = index.repeated(runs, hashes)
    read = set().union(*(run.files for run in runs if run.path in repeated)) & paths
    return [task for task in tasks if task.file.file_path in read or task.file.file_path not in covered], \
        paths - covered


def _published_rows(finder: DuplicateFinder, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hash, row number) of each published row whose key hash is in ``wanted``, sorted by hash."""
    found_hashes: list[np.ndarray] = []
    found_rows: list[np.ndarray] = []
    for hashes, numbers in finder.published():
        hit = member(hashes, wanted)
        found_hashes.append(hashes[hit])
        found_rows.append(numbers[hit])
    hashes = np.concatenate(found_hashes) if found_hashes else np.empty(0, dtype=np.uint64)
    rows = np.concatenate(found_rows) if found_rows else np.empty(0, dtype=np.int64)
    order = np.argsort(hashes)
    return hashes[order], rows[order]


def _read_staged(appender: ChunkedAppend, data_file: Any, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """A staged data file's row groups, one at a time (a file holds up to ``lake.append.FILE_ROWS`` rows)."""
    with appender.table.io.new_input(data_file.file_path).open() as stream:
        parquet = pq.ParquetFile(stream)
        for group in range(parquet.num_row_groups):
            yield parquet.read_row_group(group, columns=columns)


def _same_rows(left: pa.Table, right: pa.Table, columns: list[str]) -> np.ndarray:
    """Row by row, whether ``left`` and ``right`` (aligned) hold the same values; two nulls are the same."""
    same = np.ones(left.num_rows, dtype=bool)
    for name in columns:
        a, b = left[name].combine_chunks(), right[name].combine_chunks()
        if pa.types.is_nested(a.type):
            same &= np.array([x == y for x, y in zip(a.to_pylist(), b.to_pylist(), strict=True)], dtype=bool)
            continue
        if a.type != b.type:
            b = b.cast(a.type)
        equal = pc.fill_null(pc.equal(a, b), False)
        both_null = pc.and_(pc.is_null(a), pc.is_null(b))
        same &= np.asarray(pc.or_(equal, both_null).to_numpy(zero_copy_only=False), dtype=bool)
    return same


def _rows_with_keys(data: pa.Table, keys: list[str], wanted: pa.Table) -> np.ndarray:
    """Mask of the rows of ``data`` whose key (all of ``keys``) is one of ``wanted``'s, compared exactly."""
    indexed = data.select(keys).append_column("__row", pa.array(np.arange(data.num_rows, dtype=np.int64)))
    # A key ``wanted`` holds twice matches a row twice: the same mask.
    matched = indexed.join(wanted.select(keys), keys=keys, join_type="inner")
    mask = np.zeros(data.num_rows, dtype=bool)
    mask[matched["__row"].to_numpy()] = True
    return mask


def _sources(table: Any) -> dict[str, str]:
    """Each live data file of the table: the source file whose load added it (``""`` when unknown)."""
    names: dict[str, str] = {}
    snapshot = table.current_snapshot()
    if snapshot is None:
        return names
    for manifest in snapshot.manifests(table.io):
        if manifest.content != ManifestContent.DATA:
            continue
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            added = table.metadata.snapshot_by_id(entry.snapshot_id) if entry.snapshot_id is not None else None
            props = added.summary.additional_properties if added is not None and added.summary is not None else {}
            names[entry.data_file.file_path] = props.get(SOURCE_FILE, "")
    return names


def settle(table: Any, declared: TableSchema, finder: DuplicateFinder, appender: ChunkedAppend,
           hashes: FileHashes | None = None, set_aside: SetAside | None = None,
           key_cache: RunCache | None = None) -> Repeats:
    """Settle the staged rows of ``appender`` whose key ``table`` already holds; see the module's docstring.

    Call after every row is staged (``appender.data_files``) and the finder resolved. ``hashes``:
    the load's key hashes, to skip the data files the table's key index clears. ``set_aside``
    takes the refused rows of a ``refuse`` table (the quarantine), a range at a time. ``key_cache``:
    where the key index's runs are kept decoded on local disk (none: read from the store).
    """
    repeats = Repeats()
    if declared.on_repeat is None or not declared.identifier_fields or table.current_snapshot() is None:
        return repeats
    if declared.on_repeat is OnRepeat.REFUSE and set_aside is None:
        raise ValueError(f"{declared.full_name} refuses repeated keys: settle needs where to set them aside")
    keys = list(declared.identifier_fields)
    reader, tasks = _scan_tasks(table, tuple(keys), _staged_range(table, keys, appender.data_files))
    tasks, unindexed = _indexed(table, tasks, hashes, key_cache)
    whole = None if hashes is None else ArrowScan(table.metadata, table.io, table.schema().select(*keys), AlwaysTrue())
    candidate_hashes, candidate_files, gathered = _candidates(reader, tasks, keys, finder.seen, whole, unindexed)
    if gathered:
        # Files written before the index (or by Trino) get a run once read: later loads skip them.
        backfill = sorted_unique(as_int64(np.concatenate(list(gathered.values()))))
        KeyIndex(table, key_cache).write(list(gathered), [backfill])
        gathered.clear()
    if not len(candidate_hashes):
        return repeats
    # The staged rows whose key hash an earlier load's row shares: compared exactly below.
    matched_hashes, matched_rows = _published_rows(finder, sorted_unique(candidate_hashes))
    if not len(matched_hashes):
        return repeats
    files = np.unique(candidate_files[member(candidate_hashes, matched_hashes)])
    del candidate_hashes, candidate_files
    keep_latest = declared.on_repeat is OnRepeat.KEEP_LATEST
    columns = [c.name for c in declared.lake_columns]
    wanted = columns if keep_latest else keys + ([PERSON] if PERSON in columns else [])
    # Whole files, with no row filter, for a rewrite: a rewritten file keeps every row it does not
    # replace, and a row's position is its place in this read.
    full = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue()) if keep_latest else None
    bounds = matched_hashes[SLICE_ROWS::SLICE_ROWS]
    with tempfile.TemporaryDirectory(prefix="settle-", dir=finder.spill_dir) as folder:
        lake, staged = _Slices(Path(folder) / "lake", bounds), _Slices(Path(folder) / "staged", bounds)
        try:
            table_rows = full if full is not None else reader
            for index in files.tolist():
                lake.gather((pa.Table.from_batches([batch]) for batch in table_rows.to_record_batches([tasks[index]])),
                            keys, matched_hashes, columns if keep_latest else keys, LAKE_FILE, index)
            for index, data_file in enumerate(appender.data_files):
                staged.gather(_read_staged(appender, data_file, list(dict.fromkeys(keys + wanted))), keys,
                              matched_hashes, wanted, WHERE, index)
            drops = _Drops()
            sources = _sources(table) if not keep_latest else {}
            paths = [task.file.file_path for task in tasks]
            for number in range(len(bounds) + 1):
                staged_rows, lake_rows = staged.read(number), lake.read(number)
                if staged_rows is None or lake_rows is None:
                    continue
                # Exact: a staged row repeats a key when every key value equals an earlier row's.
                pairs = staged_rows.join(lake_rows.select([*keys, LAKE_FILE]), keys=keys, join_type="inner")
                if not pairs.num_rows:
                    continue
                if keep_latest:
                    _keep_latest(keys, columns, pairs, lake_rows, drops, repeats)
                else:
                    assert set_aside is not None
                    _refuse(keys, pairs, (matched_hashes, matched_rows), paths, sources, drops, repeats, set_aside)
        finally:
            lake.close()
            staged.close()
    if full is not None:
        for index, positions in sorted(drops.lake.items()):
            data = full.to_table([tasks[index]]).select(columns)
            appender.replaced.append(tasks[index].file)
            # Rows deleted through Trino (delete files) were left out of the read: not written again.
            kept = data.filter(pa.array(~_at(data.num_rows, positions)))
            repeats.rewritten.append(row_hashes(kept, keys))
            appender.write(kept.cast(appender.arrow_schema))
    _drop_staged(appender, drops.staged)
    return repeats


@dataclass
class _Drops:
    """Rows to leave out, by data file (its index) and position: staged rows not published after
    all, and table rows a keep-latest load replaces."""

    staged: dict[int, list[np.ndarray]] = field(default_factory=dict)
    lake: dict[int, list[np.ndarray]] = field(default_factory=dict)

    @staticmethod
    def add(into: dict[int, list[np.ndarray]], rows: pa.Table, where: str) -> None:
        files = rows[where].to_numpy()
        positions = rows[POSITION].to_numpy()
        for index in np.unique(files).tolist():
            into.setdefault(index, []).append(positions[files == index])


def _at(count: int, positions: list[np.ndarray]) -> np.ndarray:
    """A mask of ``count`` rows, true at ``positions``."""
    mask = np.zeros(count, dtype=bool)
    for part in positions:
        mask[part] = True
    return mask


class _Slices:
    """Rows set aside by the range of their key hash (``bounds``: where each range after the first
    begins), as Arrow files in ``folder``, read back one range at a time: the settling holds at
    most one range's rows, ``SLICE_ROWS`` repeated keys, whatever the number of repeats."""

    def __init__(self, folder: Path, bounds: np.ndarray) -> None:
        folder.mkdir()
        self.folder = folder
        self.bounds = bounds
        self._writers: dict[int, tuple[Any, pa.Schema]] = {}

    def gather(self, parts: Iterable[pa.Table], keys: list[str], matched: np.ndarray, columns: list[str],
               where: str, index: int) -> None:
        """Set aside the rows of ``parts`` (one data file's, in order) whose key hash is in ``matched``,
        with ``columns``, the file's ``index`` (as ``where``) and each row's position in the file."""
        offset = 0
        for part in parts:
            hashes = row_hashes(part, keys)
            hit = member(hashes, matched)
            if hit.any():
                count = int(hit.sum())
                rows = part.select(columns).filter(pa.array(hit)) \
                    .append_column(where, pa.array(np.full(count, index, dtype=np.int32))) \
                    .append_column(POSITION, pa.array(offset + np.flatnonzero(hit)))
                self._add(rows, hashes[hit])
            offset += part.num_rows

    def _add(self, rows: pa.Table, hashes: np.ndarray) -> None:
        owner = np.searchsorted(self.bounds, hashes, side="right")
        for number in np.unique(owner).tolist():
            part = rows.filter(pa.array(owner == number))
            if number not in self._writers:
                self._writers[number] = (pa.ipc.new_file(str(self.folder / f"{number}.arrow"), part.schema),
                                         part.schema)
            writer, schema = self._writers[number]
            writer.write_table(part.cast(schema))

    def read(self, number: int) -> pa.Table | None:
        """The rows of range ``number`` (its file removed once read); None if it has none."""
        if number not in self._writers:
            return None
        self._writers.pop(number)[0].close()
        path = self.folder / f"{number}.arrow"
        with pa.OSFile(str(path)) as source:
            rows = pa.ipc.open_file(source).read_all()
        path.unlink()
        return rows

    def close(self) -> None:
        for writer, _ in self._writers.values():
            writer.close()
        self._writers.clear()


def _refuse(keys: list[str], pairs: pa.Table, published: tuple[np.ndarray, np.ndarray], paths: list[str],
            sources: dict[str, str], drops: _Drops, repeats: Repeats, set_aside: SetAside) -> None:
    """Set one range's repeated rows aside, each once, naming the earliest table file holding its key."""
    first = pairs.group_by(keys + ([PERSON] if PERSON in pairs.column_names else []) + [WHERE, POSITION]) \
        .aggregate([(LAKE_FILE, "min")])
    hashes, numbers = published
    rows = numbers[search(hashes, row_hashes(first, keys))].tolist()
    people = first[PERSON].to_pylist() if PERSON in first.column_names else [None] * first.num_rows
    # One string per earlier file, shared by its rows.
    named = {index: sources.get(paths[index]) or f"an earlier load ({paths[index]})"
             for index in pc.unique(first[f"{LAKE_FILE}_min"]).to_pylist()}
    earlier = [named[index] for index in first[f"{LAKE_FILE}_min"].to_pylist()]
    set_aside(rows, people, earlier)
    if rows:
        lowest = int(np.argmin(rows))
        if repeats.first_refused is None or rows[lowest] < repeats.first_refused[0]:
            repeats.first_refused = (rows[lowest], earlier[lowest])
    repeats.refused += len(rows)
    drops.add(drops.staged, first, WHERE)


def _keep_latest(keys: list[str], columns: list[str], pairs: pa.Table, lake: pa.Table, drops: _Drops,
                 repeats: Repeats) -> None:
    """Settle one range of repeated keys of a keep-latest table: unchanged rows are not published
    again; the table's rows of an updated key are left out of their files' rewrite."""
    staged = _unique_staged(pairs, keys, columns)
    previous = lake.filter(pa.array(_rows_with_keys(lake, keys, staged)))
    # A key the table held once, with the same values: unchanged. Held twice (before keys were
    # checked across loads) or with other values: updated, every old row replaced.
    counts = previous.group_by(keys).aggregate([([], "count_all")])
    once = counts.filter(pc.equal(counts["count_all"], 1)).select(keys)
    single = previous if once.num_rows == previous.num_rows else \
        previous.filter(pa.array(_rows_with_keys(previous, keys, once))) if once.num_rows else previous.slice(0, 0)
    # Old and new row of each key side by side (a join aligns them; no sort of the keys).
    values = [name for name in columns if name not in keys]
    both = single.select(columns).join(staged.select([*columns, WHERE, POSITION]), keys=keys, join_type="inner",
                                       left_suffix="__old", right_suffix="__new")
    old_rows = both.select([f"{name}__old" for name in values]).rename_columns(values)
    new_rows = both.select([f"{name}__new" for name in values]).rename_columns(values)
    same = _same_rows(old_rows, new_rows, values) if both.num_rows and values else np.ones(both.num_rows, dtype=bool)
    unchanged = both.filter(pa.array(same))
    repeats.unchanged += unchanged.num_rows
    repeats.updated += staged.num_rows - unchanged.num_rows
    drops.add(drops.staged, unchanged, WHERE)
    if unchanged.num_rows == staged.num_rows:
        return  # every repeat unchanged (a file re-sent as it was): nothing replaced
    replaced = staged.filter(pa.array(~_rows_with_keys(staged, keys, unchanged))) if unchanged.num_rows else staged
    drops.add(drops.lake, previous.filter(pa.array(_rows_with_keys(previous, keys, replaced))), LAKE_FILE)


def _unique_staged(pairs: pa.Table, keys: list[str], columns: list[str]) -> pa.Table:
    """One row per staged key (a key matched several table rows appears once per match in ``pairs``)."""
    first = pairs.append_column("__pair", pa.array(np.arange(pairs.num_rows, dtype=np.int64)))
    chosen = first.group_by(keys).aggregate([("__pair", "min")])["__pair_min"]
    return pairs.take(chosen).select([*columns, WHERE, POSITION])


def _drop_staged(appender: ChunkedAppend, drops: dict[int, list[np.ndarray]]) -> None:
    """Rewrite each staged data file that has rows in ``drops`` (its positions, by file index) without them."""
    for index in sorted(drops, reverse=True):
        data_file = appender.data_files[index]
        del appender.data_files[index]
        dropped = _at(int(data_file.record_count), drops[index])
        # Row group by row group into new staged files (appended after the ones still to visit).
        offset = 0
        for data in _read_staged(appender, data_file):
            keep = ~dropped[offset:offset + data.num_rows]
            offset += data.num_rows
            if keep.any():
                appender.write(data.filter(pa.array(keep)).cast(appender.arrow_schema))
        appender.table.io.delete(data_file.file_path)  # staged only: never visible
