"""Load one landed file into its table: check, pseudonymise, write-audit-publish, once.

- Write: valid rows are appended inside one Iceberg transaction, in chunks of
  ``flush_rows``, so memory stays bounded; nothing is visible until the commit.
- Audit: rows that break a rule are set aside for quarantine; if their share passes the
  table's threshold the transaction is dropped, nothing is published, and the file is
  recorded as rejected with the reason.
- Publish: one atomic commit of the table. Every snapshot carries the file's SHA-256, and
  ``ops.ingested_files`` records it too, so a file is published at most once: a retry after
  a crash at any step finds what was committed and finishes the rest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from santelake.digest import file_sha256
from santelake.ingest import source
from santelake.ingest.errors import FileRejectedError
from santelake.ingest.expectations import AUDIT_ROWS, audit
from santelake.ingest.rules import KnownPersons, RowRule, table_rules
from santelake.pseudonymise import InvalidValuesError, Pseudonymiser, apply_transforms
from santelake.schema import TableSchema, ensure_table, to_arrow_schema

SOURCE_HASH = "santelake.source-sha256"
SOURCE_FILE = "santelake.source-file"
ROWS_READ = "santelake.rows-read"
PUBLISHED = "published"
REJECTED = "rejected"
DEFAULT_THRESHOLD = 0.05
DEFAULT_FLUSH_ROWS = 500_000


@dataclass(frozen=True)
class LoadResult:
    table: str
    file: str
    sha256: str
    status: str
    rows_read: int
    rows_published: int
    rows_quarantined: int
    message: str = ""
    data_docs: str = ""


@dataclass
class _Quarantine:
    rows: list[int] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)


def _transform(batch: pa.RecordBatch, declared: TableSchema, pseudonymiser: Pseudonymiser,
               bad: dict[int, str]) -> list[pa.Array]:
    """Lake columns of ``batch``; rows whose raw value cannot be transformed land in ``bad``."""
    arrays = []
    for column in declared.lake_columns:
        assert column.source is not None
        raw = batch.column(column.source)
        for _ in range(3):
            try:
                arrays.append(apply_transforms(column, raw, pseudonymiser))
                break
            except InvalidValuesError as exc:
                mask = np.zeros(len(raw), dtype=bool)
                mask[list(exc.rows)] = True
                for row in exc.rows:
                    bad.setdefault(row, f"{column.name}.format")
                raw = pc.if_else(pa.array(mask), pa.nulls(len(raw), raw.type), raw)
        else:
            raise RuntimeError(f"{column.name}: values still invalid after nulling the rows reported")
    return arrays


def _raw_reference(batch: pa.RecordBatch, rows: Iterable[int], pseudonymiser: Pseudonymiser) -> list[str]:
    """A pseudonymised fingerprint of each raw row: it finds the row again, it reveals nothing."""
    rows = list(rows)
    if not rows:
        return []
    picked = batch.take(pa.array(rows, pa.int64()))
    columns = [picked.column(i).to_pylist() for i in range(picked.num_columns)]
    return [pseudonymiser.pseudonymise("\x1f".join("" if c[i] is None else str(c[i]) for c in columns))
            for i in range(len(rows))]


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_NULL = np.uint64(0x5BD1E9955BD1E995)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return np.asarray(x ^ (x >> np.uint64(31)), dtype=np.uint64)


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
        # Identifiers of varying width: scatter each byte to its row.
        starts = np.repeat(np.arange(count, dtype=np.int64) * width - (offsets[:-1] - offsets[0]), lengths)
        padded.reshape(-1)[starts + np.arange(len(text), dtype=np.int64)] = text
    return padded.view(np.uint64)


def _column_hashes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash of each value, the same whatever the batch it comes in; text of non-text types."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if not (pa.types.is_string(array.type) or pa.types.is_binary(array.type)):
        array = array.cast(pa.large_binary()) if pa.types.is_large_string(array.type) or \
            pa.types.is_large_binary(array.type) else array.cast(pa.string())
    wide = pa.types.is_large_binary(array.type)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64 if wide else np.int32)
    offsets = offsets[array.offset: array.offset + len(array) + 1].astype(np.int64)
    data = array.buffers()[2]
    text = (np.frombuffer(data, dtype=np.uint8) if data is not None else np.empty(0, np.uint8))
    words = _padded_words(text[offsets[0]: offsets[-1]], offsets)
    lengths = np.diff(offsets)
    used = -(-lengths // 8)
    hashes = _mix(lengths.astype(np.uint64) * _GOLDEN)
    for word in range(words.shape[1]):
        hashes = np.where(word < used, _mix(hashes ^ words[:, word]), hashes)
    if array.null_count:
        hashes[np.asarray(array.is_null())] = _NULL
    return hashes


def row_hashes(table: pa.Table, keys: list[str]) -> np.ndarray:
    """A 64-bit hash of each row's ``keys``, computed on the Arrow buffers (no pandas copy)."""
    hashes = np.zeros(table.num_rows, dtype=np.uint64)
    for key in keys:
        hashes = _mix(hashes * _GOLDEN + _column_hashes(table[key]))
    return hashes


class SeenRows:
    """64-bit hashes of the key of every row staged so far, to find duplicates exactly.

    Kept as sorted numpy arrays merged in batches: 8 bytes a row (80 MB for ten million),
    the one part of a load's memory that grows with the file.
    """

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = list(keys)
        self.hashes = np.empty(0, dtype=np.uint64)

    def duplicates(self, lake: pa.Table) -> np.ndarray:
        """A mask of the rows whose key was seen before (earlier in this batch or in the file)."""
        hashes = row_hashes(lake, self.keys)
        # Sorting, not numpy's hash-based unique, which is several times slower here; sorted
        # probes also walk the index in order instead of jumping around it.
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        repeated = np.zeros(len(hashes), dtype=bool)
        repeated[1:] = ordered[1:] == ordered[:-1]
        where = np.searchsorted(self.hashes, ordered)
        known = repeated.copy()
        if len(self.hashes):
            known |= self.hashes[np.minimum(where, len(self.hashes) - 1)] == ordered
        self.hashes = np.insert(self.hashes, where[~known], ordered[~known])
        duplicate = np.empty(len(hashes), dtype=bool)
        duplicate[order] = known
        return duplicate


def _committed_snapshot(table: Any, sha256: str, *, final: bool = True) -> Any | None:
    """The snapshot that published the file (the last of its transaction, which carries the counts)."""
    for snapshot in table.metadata.snapshots:
        props = snapshot.summary.additional_properties if snapshot.summary is not None else {}
        if props.get(SOURCE_HASH) == sha256 and (not final or ROWS_READ in props):
            return snapshot
    return None


def _recorded(files_table: Any, sha256: str, target: str) -> dict[str, Any] | None:
    # Both values are ours: a hex digest and a declared table name.
    condition = f"file_sha256 == '{sha256}' AND target_table == '{target}'"
    rows = files_table.scan(row_filter=condition).to_arrow().to_pylist()
    return rows[0] if rows else None


class Loader:
    """Loads files into the lake through one catalog, with one pseudonymisation key."""

    def __init__(self, catalog: Any, pseudonymiser: Pseudonymiser, schemas: dict[str, TableSchema], *,
                 threshold: float = DEFAULT_THRESHOLD, flush_rows: int = DEFAULT_FLUSH_ROWS,
                 gx_dir: Path | None = None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 after_step: Callable[[str], None] = lambda _: None) -> None:
        self.catalog = catalog
        self.pseudonymiser = pseudonymiser
        self.schemas = schemas
        self.threshold = threshold
        self.flush_rows = flush_rows
        # Where the Great Expectations project and its Data Docs live; None skips the audit
        # (unit tests of the row rules only: every installation passes one).
        self.gx_dir = gx_dir
        self.clock = clock
        # Called after each durable step; tests use it to kill the process at that point.
        self.after_step = after_step

    def _ops(self, name: str) -> Any:
        return ensure_table(self.catalog, self.schemas[f"ops.{name}"])[0]

    def known_persons(self) -> KnownPersons | None:
        identifier = self.schemas["snds.beneficiaries"].identifier
        if not self.catalog.table_exists(identifier):
            return None
        return KnownPersons(self.catalog.load_table(identifier).scan(selected_fields=("person_id",))
                            .to_arrow()["person_id"])

    def is_recorded(self, table_name: str, path: Path) -> bool:
        """Whether ``path`` was loaded (published or rejected) into ``table_name`` already."""
        identifier = self.schemas["ops.ingested_files"].identifier
        if not self.catalog.table_exists(identifier):
            return False
        files_table = self.catalog.load_table(identifier)
        return _recorded(files_table, file_sha256(path), self.schemas[table_name].full_name) is not None

    def load(self, table_name: str, path: Path) -> LoadResult:
        declared = self.schemas[table_name]
        sha256 = file_sha256(path)
        table, _ = ensure_table(self.catalog, declared)
        files_table = self._ops("ingested_files")
        quarantine_table = self._ops("quarantine")
        record = _recorded(files_table, sha256, declared.full_name)
        if record is not None:
            return LoadResult(declared.full_name, path.name, sha256, "already-" + record["status"],
                              0, 0, 0, f"{path.name} was already loaded ({record['status']} at {record['loaded_at']})")
        done = _committed_snapshot(table, sha256)
        if done is not None:
            # Published before a crash that came before the record: record it, publish nothing again.
            props = done.summary.additional_properties
            result = LoadResult(declared.full_name, path.name, sha256, PUBLISHED, int(props[ROWS_READ]),
                                int(props["santelake.rows-published"]), int(props["santelake.rows-quarantined"]))
            self._record(files_table, result)
            return result
        persons = self.known_persons() if declared.name != "beneficiaries" else None
        return self._load_new(declared, table, quarantine_table, files_table, path, sha256, persons)

    def _load_new(self, declared: TableSchema, table: Any, quarantine_table: Any, files_table: Any, path: Path,
                  sha256: str, persons: KnownPersons | None) -> LoadResult:
        rules = table_rules(declared, persons)
        schema = to_arrow_schema(declared)
        keys = declared.identifier_fields or tuple(c.name for c in declared.lake_columns)
        transaction = table.transaction()
        # Appends run on one background thread (Arrow and Parquet release the GIL), overlapping
        # the Iceberg write of a chunk with reading and checking the next; one at a time.
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iceberg-append")
        pending: Future[None] | None = None
        quarantine = _Quarantine()
        seen = SeenRows(keys)
        buffer: list[pa.Table] = []
        sample: list[pa.Table] = []
        sampled = 0
        buffered = read = published = 0
        try:
            for batch in source.batches(path, declared):
                bad: dict[int, str] = {}
                arrays = _transform(batch, declared, self.pseudonymiser, bad)
                lake = pa.Table.from_arrays(arrays, names=[c.name for c in declared.lake_columns])
                self._apply_rules(lake, rules, bad)
                ok = np.ones(lake.num_rows, dtype=bool)
                ok[list(bad)] = False
                dupes = seen.duplicates(lake.filter(pa.array(ok)))
                for index in np.flatnonzero(ok)[dupes]:
                    bad[int(index)] = "duplicate_row"
                    ok[index] = False
                rows = sorted(bad)
                quarantine.rows += [read + r + 1 for r in rows]
                quarantine.rules += [bad[r] for r in rows]
                quarantine.references += _raw_reference(batch, rows, self.pseudonymiser)
                valid = lake.filter(pa.array(ok)).cast(schema)
                if sampled < AUDIT_ROWS:
                    sample.append(valid.slice(0, AUDIT_ROWS - sampled))
                    sampled += sample[-1].num_rows
                buffer.append(valid)
                buffered += valid.num_rows
                read += batch.num_rows
                if buffered >= self.flush_rows:
                    if pending is not None:
                        pending.result()
                        self.after_step("write")
                    pending = writer.submit(self._append, transaction, buffer, sha256, path)
                    published += buffered
                    buffer, buffered = [], 0
            if pending is not None:
                pending.result()
                self.after_step("write")
        finally:
            writer.shutdown(wait=True)
        share = len(quarantine) / read
        if share > self.threshold:
            message = (f"{path.name}: {len(quarantine)} of {read} rows ({share:.1%}) break a rule, above the "
                       f"{self.threshold:.0%} threshold of {declared.full_name}; nothing published. "
                       f"Rules broken: {_rule_counts(quarantine.rules)}")
            self._reject(LoadResult(declared.full_name, path.name, sha256, REJECTED, read, 0, len(quarantine), message),
                         declared, path, quarantine, quarantine_table, files_table)
        docs = ""
        if self.gx_dir is not None and sampled:
            checked = audit(self.gx_dir, declared, rules, pa.concat_tables(sample))
            docs = checked.data_docs
            if not checked.success:
                message = (f"{path.name}: the staged rows fail expectations {', '.join(checked.failed)}; nothing "
                           f"published. Data Docs: {docs}")
                self._reject(LoadResult(declared.full_name, path.name, sha256, REJECTED, read, 0, len(quarantine),
                                        message, docs), declared, path, quarantine, quarantine_table, files_table)
        published += buffered
        summary = {ROWS_READ: str(read), "santelake.rows-published": str(published),
                   "santelake.rows-quarantined": str(len(quarantine))}
        self._write_quarantine(quarantine_table, declared, path, sha256, quarantine)
        self.after_step("quarantine")
        self._append(transaction, buffer or [pa.Table.from_pylist([], schema=schema)], sha256, path, summary)
        transaction.commit_transaction()
        self.after_step("publish")
        result = LoadResult(declared.full_name, path.name, sha256, PUBLISHED, read, published, len(quarantine),
                            data_docs=docs)
        self._record(files_table, result)
        self.after_step("record")
        return result

    def _reject(self, result: LoadResult, declared: TableSchema, path: Path, quarantine: _Quarantine,
                quarantine_table: Any, files_table: Any) -> NoReturn:
        """Keep the rejected rows and the file's record for review, publish nothing, fail the load."""
        self._write_quarantine(quarantine_table, declared, path, result.sha256, quarantine)
        self._record(files_table, result)
        raise FileRejectedError(result.message)

    @staticmethod
    def _apply_rules(lake: pa.Table, rules: list[RowRule], bad: dict[int, str]) -> None:
        for rule in rules:
            for row in np.flatnonzero(np.asarray(rule.violations(lake).to_numpy(zero_copy_only=False), dtype=bool)):
                bad.setdefault(int(row), rule.id)

    @staticmethod
    def _append(transaction: Any, buffer: list[pa.Table], sha256: str, path: Path,
                summary: dict[str, str] | None = None) -> None:
        properties = {SOURCE_HASH: sha256, SOURCE_FILE: path.name} | (summary or {})
        transaction.append(pa.concat_tables(buffer), snapshot_properties=properties)

    def _write_quarantine(self, quarantine_table: Any, declared: TableSchema, path: Path, sha256: str,
                          quarantine: _Quarantine) -> None:
        if not quarantine or _committed_snapshot(quarantine_table, sha256, final=False) is not None:
            return
        now = self.clock()
        count = len(quarantine)
        rows = pa.table({
            "target_table": [declared.full_name] * count,
            "source_file": [path.name] * count,
            "file_sha256": [sha256] * count,
            "row_number": pa.array(quarantine.rows, pa.int64()),
            "rule": quarantine.rules,
            "raw_reference": quarantine.references,
            "pseudonym_key_id": [self.pseudonymiser.key_id] * count,
            "loaded_at": pa.array([now] * count, pa.timestamp("us", tz="UTC")),
        })
        schema = to_arrow_schema(self.schemas["ops.quarantine"])
        quarantine_table.append(rows.select(schema.names).cast(schema),
                                snapshot_properties={SOURCE_HASH: sha256, SOURCE_FILE: path.name})

    def _record(self, files_table: Any, result: LoadResult) -> None:
        schema = to_arrow_schema(self.schemas["ops.ingested_files"])
        row = {
            "file_sha256": result.sha256, "file_name": result.file, "target_table": result.table,
            "row_count": result.rows_published, "quarantined_count": result.rows_quarantined,
            "status": result.status, "pseudonym_key_id": self.pseudonymiser.key_id, "loaded_at": self.clock(),
        }
        files_table.append(pa.Table.from_pylist([row]).select(schema.names).cast(schema))


def _rule_counts(rules: list[str]) -> str:
    counts: dict[str, int] = {}
    for rule in rules:
        counts[rule] = counts.get(rule, 0) + 1
    return ", ".join(f"{rule} x{n}" for rule, n in sorted(counts.items(), key=lambda kv: -kv[1])[:8])
