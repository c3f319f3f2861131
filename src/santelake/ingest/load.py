"""Load one landed file into its table: check, pseudonymise, write-audit-publish, once.

- Write: valid rows are written in chunks of ``flush_rows``, so memory stays bounded, each
  chunk's rows of a partition into that partition's open data file; nothing is visible
  until one snapshot adds them all (``lake.append``). Duplicate rows are found exactly
  with a fixed-size filter and a spill to disk (``dedupe``), so memory does not grow with
  the file either.
- Audit: rows that break a rule are set aside for quarantine; if their share passes the
  table's threshold the transaction is dropped, nothing is published, and the file is
  recorded as rejected with the reason.
- Publish: one atomic commit of the table. Every snapshot carries the file's SHA-256, and
  ``ops.ingested_files`` records it too, so a file is published at most once: a retry after
  a crash at any step finds what was committed and finishes the rest.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.types import StringType

from santelake.digest import file_sha256
from santelake.erasure.register import OppositionRegister
from santelake.ingest import source
from santelake.ingest.dedupe import DEFAULT_DEDUPE_BYTES, DuplicateFinder, dedupe_bytes
from santelake.ingest.errors import FileRejectedError
from santelake.ingest.expectations import AUDIT_ROWS, Audit, audit
from santelake.ingest.identity import ALREADY_LOADED, SOURCE_FILE, settle
from santelake.ingest.keyindex import FileHashes, KeyIndex, RunCache
from santelake.ingest.quarantine import DEFAULT_MEMORY_ROWS, Quarantine
from santelake.ingest.rules import KnownPersons, RowRule, table_rules
from santelake.lake.append import ChunkedAppend
from santelake.lake.stream import file_by_file, grouped
from santelake.pseudonymise import InvalidValuesError, Pseudonymiser, apply_transforms
from santelake.schema import TableSchema, Transform, ensure_table, to_arrow_schema

LOG = logging.getLogger(__name__)

SOURCE_HASH = "santelake.source-sha256"
ROWS_READ = "santelake.rows-read"
# Counted by the identity check across loads (ingest/identity.py); absent from older snapshots.
ROWS_UPDATED = "santelake.rows-updated"
ROWS_UNCHANGED = "santelake.rows-unchanged"
ROWS_REFUSED = "santelake.rows-refused"
ROWS_OPPOSED = "santelake.rows-opposed"
PUBLISHED = "published"
REJECTED = "rejected"
DEFAULT_THRESHOLD = 0.05
# Rows a chunk of data files holds. 1M made half the data files and saved the object store
# about 0.7 s of CPU a 10M-row load, but a 30M-row load then went over a 1.25 GiB memory limit
# it keeps to at 500,000 (docs/benchmarks.md).
DEFAULT_FLUSH_ROWS = 500_000
DEFAULT_OPS_HISTORY = 100


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
    # Of the published rows, those replacing an earlier load's row under the same key; rows
    # identical to an earlier load's (not published); rows refused as already loaded (quarantined).
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_refused: int = 0
    # Rows of persons in the opposition register: dropped, neither published nor quarantined.
    rows_opposed: int = 0

    @property
    def rows_new(self) -> int:
        return self.rows_published - self.rows_updated


class _Stage:
    """The second half of a load, on its own thread: transforms, rules, duplicates, buffering.

    The main thread reads and pseudonymises (the HMAC of each person is Python, holding
    the GIL); this thread meanwhile transforms the other columns of the batch before,
    checks its rules and duplicates (Arrow and numpy, which release the GIL). At most two
    batches wait for it, so memory stays bounded. The data files are written on a third
    thread, one chunk at a time.
    """

    QUEUED = 2

    def __init__(self, loader: Loader, declared: TableSchema, rules: list[RowRule], finder: DuplicateFinder,
                 appender: ChunkedAppend, quarantine: Quarantine, opposed: pa.Array | None = None) -> None:
        self.loader, self.declared, self.rules, self.finder = loader, declared, rules, finder
        # The opposition register's pseudonyms, and the person columns they are looked for in.
        self.opposed = opposed
        self.person_columns = [c.name for c in declared.person_columns] if opposed is not None else []
        self.dropped = 0
        self.appender = appender
        self.schema = to_arrow_schema(declared)
        self.names = [c.name for c in declared.lake_columns]
        self.quarantine = quarantine
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-stage")
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iceberg-append")
        self.queued: deque[Future[None]] = deque()
        self.pending: Future[None] | None = None
        self.buffer: list[pa.Table] = []
        self.sample: list[pa.Table] = []
        self.buffered = self.published = self.sampled = 0

    def submit(self, batch: pa.RecordBatch, done: dict[str, pa.Array], checked: dict[str, pa.Array],
               offset: int) -> None:
        while len(self.queued) >= self.QUEUED:
            self.queued.popleft().result()  # also raises here what failed there
        self.queued.append(self.worker.submit(self._stage, batch, done, checked, offset))

    def _stage(self, batch: pa.RecordBatch, done: dict[str, pa.Array], checked_early: dict[str, pa.Array],
               offset: int) -> None:
        pseudonymiser = self.loader.pseudonymiser
        bad: dict[int, str] = {}
        lake = pa.Table.from_arrays(_transform(batch, self.declared, pseudonymiser, bad, done), names=self.names)
        self.loader._apply_rules(lake, self.rules, bad, checked_early)
        ok = np.ones(lake.num_rows, dtype=bool)
        if self.person_columns:
            # A person who objected: the row goes before anything keeps it (not even quarantine).
            opposed = np.zeros(lake.num_rows, dtype=bool)
            for name in self.person_columns:
                found = pc.is_in(lake.column(name), value_set=self.opposed)
                opposed |= np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)
            if opposed.any():
                ok[opposed] = False
                for row in np.flatnonzero(opposed):
                    bad.pop(int(row), None)
                self.dropped += int(opposed.sum())
        ok[list(bad)] = False
        checked = lake if ok.all() else lake.filter(pa.array(ok))
        write = self.finder.check(checked, batch, np.flatnonzero(ok), offset)
        rows = sorted(bad)
        self.quarantine.add([offset + r + 1 for r in rows], [bad[r] for r in rows],
                            _raw_reference(batch, rows, pseudonymiser))
        valid = (checked if write.all() else checked.filter(pa.array(write))).cast(self.schema)
        if self.sampled < AUDIT_ROWS:
            self.sample.append(valid.slice(0, AUDIT_ROWS - self.sampled))
            self.sampled += self.sample[-1].num_rows
        self.add(valid)

    def add(self, valid: pa.Table) -> None:
        self.buffer.append(valid)
        self.buffered += valid.num_rows
        if self.buffered >= self.loader.flush_rows:
            self._wait_for_append()
            self.pending = self.writer.submit(self.appender.write, pa.concat_tables(self.buffer))
            self.published += self.buffered
            self.buffer, self.buffered = [], 0

    def _wait_for_append(self) -> None:
        if self.pending is not None:
            self.pending.result()
            self.pending = None
            self.loader.after_step("write")

    def drain(self) -> None:
        while self.queued:
            self.queued.popleft().result()

    def finish(self) -> None:
        self.drain()
        self._wait_for_append()

    def close(self) -> None:
        self.worker.shutdown(wait=True, cancel_futures=True)
        self.writer.shutdown(wait=True)


def _transform(batch: pa.RecordBatch, declared: TableSchema, pseudonymiser: Pseudonymiser,
               bad: dict[int, str], done: dict[str, pa.Array] | None = None) -> list[pa.Array]:
    """Lake columns of ``batch`` (but those in ``done``); rows whose raw value cannot be transformed land in ``bad``."""
    arrays = []
    for column in declared.lake_columns:
        assert column.source is not None
        if done and column.name in done:
            arrays.append(done[column.name])
            continue
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


def _raw_reference(batch: pa.RecordBatch | pa.Table, rows: Iterable[int], pseudonymiser: Pseudonymiser) -> list[str]:
    """A pseudonymised fingerprint of each raw row: it finds the row again, it reveals nothing."""
    rows = list(rows)
    if not rows:
        return []
    picked = batch.take(pa.array(rows, pa.int64()))
    # As text: a typed raw column gives its canonical text, and a date Python cannot hold (year 0) no error.
    columns = [source.as_text(picked.column(i)).to_pylist() for i in range(picked.num_columns)]
    return [pseudonymiser.pseudonymise("\x1f".join("" if c[i] is None else str(c[i]) for c in columns))
            for i in range(len(rows))]


def _committed_snapshot(table: Any, sha256: str) -> Any | None:
    """The snapshot that published the file (it carries the counts; loads before one snapshot a file made several)."""
    for snapshot in table.metadata.snapshots:
        props = snapshot.summary.additional_properties if snapshot.summary is not None else {}
        if props.get(SOURCE_HASH) == sha256 and ROWS_READ in props:
            return snapshot
    return None


def _first_row_of_file(ops_table: Any, sha256: str, target: str) -> dict[str, Any] | None:
    """A row of an ops table about one file loaded into one table, read from its data (not its history)."""
    # Both values are ours: a hex digest and a declared table name.
    condition = f"file_sha256 == '{sha256}' AND target_table == '{target}'"
    rows = ops_table.scan(row_filter=condition, limit=1).to_arrow().to_pylist()
    return rows[0] if rows else None


def trim_history(table: Any, keep: int) -> int:
    """Expire all but the newest ``keep`` snapshots of an append-only ops table, once it holds twice as many.

    Every load commits to ``ops.ingested_files`` (and ``ops.quarantine`` when it set rows
    aside), and pyiceberg copies the whole snapshot list several times a commit: measured,
    recording a file took 0.1 s on a new table and 0.56 s after 800 loads. An append-only
    table's current snapshot holds every row ever written, so its older snapshots hold
    nothing else; a load reads these tables by their data only. Returns how many
    snapshots went; 0 also when another load committed meanwhile (it trims next time).
    """
    snapshots = sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms)
    if len(snapshots) <= 2 * keep:
        return 0
    old = [s.snapshot_id for s in snapshots[:-keep]]
    try:
        table.maintenance.expire_snapshots().by_ids(old).commit()
    except CommitFailedException:
        return 0
    return len(old)


class Loader:
    """Loads files into the lake through one catalog, with one pseudonymisation key."""

    def __init__(self, catalog: Any, pseudonymiser: Pseudonymiser, schemas: dict[str, TableSchema], *,
                 threshold: float = DEFAULT_THRESHOLD, flush_rows: int = DEFAULT_FLUSH_ROWS,
                 dedupe_cap: int = DEFAULT_DEDUPE_BYTES, spill_dir: Path | None = None,
                 gx_dir: Path | None = None, ops_history: int = DEFAULT_OPS_HISTORY,
                 quarantine_memory_rows: int = DEFAULT_MEMORY_ROWS, key_cache: RunCache | None = None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 after_step: Callable[[str], None] = lambda _: None) -> None:
        self.catalog = catalog
        self.pseudonymiser = pseudonymiser
        self.schemas = schemas
        self.threshold = threshold
        self.flush_rows = flush_rows
        self.dedupe_cap = dedupe_cap
        # Where a load spills its duplicate check (8 bytes a row, removed after); None: $TMPDIR.
        self.spill_dir = spill_dir
        # Where each audit's Data Docs go (a folder per table and run); None skips the audit
        # (unit tests of the row rules only: every installation passes one).
        self.gx_dir = gx_dir
        # Snapshots an ops table keeps (``trim_history``).
        self.ops_history = ops_history
        # Rows set aside held in memory; more go to a file in ``spill_dir`` (``ingest.quarantine``).
        self.quarantine_memory_rows = quarantine_memory_rows
        # The key index's runs, decoded on local disk (``ingest.keyindex.RunCache``); None reads
        # them from the store at every check.
        self.key_cache = key_cache
        self.clock = clock
        # Called after each durable step; tests use it to kill the process at that point.
        self.after_step = after_step

    def _ops(self, name: str) -> Any:
        return ensure_table(self.catalog, self.schemas[f"ops.{name}"])[0]

    def known_persons(self) -> KnownPersons | None:
        identifier = self.schemas["snds.beneficiaries"].identifier
        if not self.catalog.table_exists(identifier):
            return None
        # One data file at a time: the prefixes take 8 bytes a person, the batches come and go.
        table = self.catalog.load_table(identifier)
        return KnownPersons(batch.column("person_id") for batch in file_by_file(table, ("person_id",)))

    def is_recorded(self, table_name: str, path: Path) -> bool:
        """Whether ``path`` was loaded (published or rejected) into ``table_name`` already."""
        identifier = self.schemas["ops.ingested_files"].identifier
        if not self.catalog.table_exists(identifier):
            return False
        files_table = self.catalog.load_table(identifier)
        return _first_row_of_file(files_table, file_sha256(path), self.schemas[table_name].full_name) is not None

    def register(self) -> OppositionRegister | None:
        """The opposition register of the catalog's database (None: a catalog without one, no SQL)."""
        engine = getattr(self.catalog, "engine", None)
        return OppositionRegister(engine) if engine is not None else None

    def load(self, table_name: str, path: Path) -> LoadResult:
        register = self.register()
        if register is None:
            return self._load(table_name, path, None)
        # Shared with other loads; an erasure holds it alone while it rewrites and deletes. Then
        # the table's own lock: loads of one table run one after the other.
        with register.lake_lock(exclusive=False), register.table_lock(self.schemas[table_name].full_name):
            opposed = register.pseudonyms(self.pseudonymiser.key_id)
            return self._load(table_name, path, pa.array(sorted(opposed), pa.string()) if opposed else None)

    def _load(self, table_name: str, path: Path, opposed: pa.Array | None) -> LoadResult:
        declared = self.schemas[table_name]
        # The file's SHA-256 (0.5 s for 600 MB, outside the GIL) is taken while the tables are
        # opened. The known persons are read only once the file is known to be new: a re-sent
        # file is answered without reading the lake.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-digest") as digest:
            hashing = digest.submit(file_sha256, path)
            table, _ = ensure_table(self.catalog, declared)
            files_table = self._ops("ingested_files")
            quarantine_table = self._ops("quarantine")
            sha256 = hashing.result()
        record = _first_row_of_file(files_table, sha256, declared.full_name)
        if record is not None:
            return LoadResult(declared.full_name, path.name, sha256, "already-" + record["status"],
                              0, 0, 0, f"{path.name} was already loaded ({record['status']} at {record['loaded_at']})")
        done = _committed_snapshot(table, sha256)
        if done is not None:
            # Published before a crash that came before the record: record it, publish nothing again.
            props = done.summary.additional_properties
            result = LoadResult(declared.full_name, path.name, sha256, PUBLISHED, int(props[ROWS_READ]),
                                int(props["santelake.rows-published"]), int(props["santelake.rows-quarantined"]),
                                rows_updated=int(props.get(ROWS_UPDATED, 0)),
                                rows_unchanged=int(props.get(ROWS_UNCHANGED, 0)),
                                rows_refused=int(props.get(ROWS_REFUSED, 0)),
                                rows_opposed=int(props.get(ROWS_OPPOSED, 0)))
            self._record(files_table, result)
            return result
        persons = self.known_persons() if declared.name != "beneficiaries" else None
        keys = declared.identifier_fields or tuple(c.name for c in declared.lake_columns)
        bloom_bytes = dedupe_bytes(source.content_bytes(path), self.dedupe_cap)
        with DuplicateFinder.spilling(keys, self.spill_dir, bloom_bytes) as finder, \
                Quarantine(self.spill_dir, self.quarantine_memory_rows) as quarantine:
            return self._load_new(declared, table, quarantine_table, files_table, path, sha256, persons, finder,
                                  quarantine, opposed)

    def _load_new(self, declared: TableSchema, table: Any, quarantine_table: Any, files_table: Any, path: Path,
                  sha256: str, persons: KnownPersons | None, finder: DuplicateFinder,
                  quarantine: Quarantine, opposed: pa.Array | None) -> LoadResult:
        rules = table_rules(declared, persons)
        # Its open files go in the load's spill folder, removed with it (after a crash too).
        appender = ChunkedAppend(table, spill_dir=finder.spill_dir)
        stage = _Stage(self, declared, rules, finder, appender, quarantine, opposed)
        schema, names = stage.schema, stage.names
        # Columns pseudonymised on the main thread (Python-bound), and the rules that read
        # only them (a known person, not null), on the pseudonyms in dictionary form (each
        # distinct one once); the stage does the rest, and takes their verdicts.
        early = [c for c in declared.lake_columns
                 if c.transforms == (Transform.PSEUDONYMISE,) and isinstance(c.type, StringType)]
        early_rules = [r for r in rules if early and set(r.columns) <= {c.name for c in early}]
        read = 0
        # The Great Expectations audit of the first staged rows runs as soon as they are
        # staged, while the reader and the other threads go on; its verdict is read after the
        # row counts, before the commit.
        audited: Audit | None = None
        docs_dir = self._docs_dir(declared, sha256)
        try:
            for batch in source.read_ahead(source.batches(path, declared)):
                done = {}
                for column in early:
                    assert column.source is not None
                    done[column.name] = self.pseudonymiser.pseudonymise_dictionary(batch.column(column.source))
                pseudonyms = pa.table(done)
                checked = {rule.id: rule.violations(pseudonyms) for rule in early_rules}
                stage.submit(batch, {name: array.dictionary_decode() for name, array in done.items()}, checked, read)
                read += batch.num_rows
                if audited is None and docs_dir is not None and stage.sampled >= AUDIT_ROWS:
                    audited = audit(docs_dir, declared, rules, pa.concat_tables(stage.sample))
            stage.drain()
            if audited is None and docs_dir is not None and stage.sampled:
                audited = audit(docs_dir, declared, rules, pa.concat_tables(stage.sample))
            if persons is not None:
                persons.release()  # every row is checked: room for settling the held rows
            # Rows held back by the duplicate check: the duplicates go to quarantine, the rest
            # (the filter's false positives, first occurrences) are published after all.
            for settled in finder.resolve(names):
                count = len(settled.duplicate_rows)
                quarantine.add(settled.duplicate_rows, ["duplicate_row"] * count,
                               _raw_reference(settled.duplicates, range(count), self.pseudonymiser))
                stage.add(settled.publish.cast(schema))
            stage.finish()
        finally:
            stage.close()
        published = stage.published + stage.buffered
        opposed_rows = stage.dropped
        share = len(quarantine) / read
        if share > self.threshold:
            message = (f"{path.name}: {len(quarantine)} of {read} rows ({share:.1%}) break a rule, above the "
                       f"{self.threshold:.0%} threshold of {declared.full_name}; nothing published. "
                       f"Rules broken: {quarantine.counts()}")
            self._reject(LoadResult(declared.full_name, path.name, sha256, REJECTED, read, 0, len(quarantine), message),
                         declared, path, quarantine, quarantine_table, files_table)
        docs = ""
        if audited is not None:
            docs = audited.data_docs
            if not audited.success:
                message = (f"{path.name}: the staged rows fail expectations {', '.join(audited.failed)}; nothing "
                           f"published. Data Docs: {docs}")
                self._reject(LoadResult(declared.full_name, path.name, sha256, REJECTED, read, 0, len(quarantine),
                                        message, docs), declared, path, quarantine, quarantine_table, files_table)
        if stage.buffer:
            appender.write(pa.concat_tables(stage.buffer))
        # Every row is staged: the keys an earlier load published are settled as the table says.
        hashes = FileHashes((chunk for chunk, _ in finder.published()), finder.published_count(), finder.spill_dir) \
            if declared.on_repeat is not None and declared.identifier_fields else None
        repeats = settle(table, declared, finder, appender, hashes,
                         lambda rows, people, earlier: quarantine.add(rows, [ALREADY_LOADED] * len(rows), people,
                                                                      earlier),
                         self.key_cache)
        published -= repeats.unchanged + repeats.refused
        summary = {ROWS_READ: str(read), "santelake.rows-published": str(published),
                   "santelake.rows-quarantined": str(len(quarantine)), ROWS_UPDATED: str(repeats.updated),
                   ROWS_UNCHANGED: str(repeats.unchanged), ROWS_REFUSED: str(repeats.refused),
                   ROWS_OPPOSED: str(opposed_rows)}
        run: Future[str] | None = None
        indexer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="key-index")
        if hashes is not None and appender.data_files:
            # The run of the table's key index for the files this commit adds (ingest/keyindex.py),
            # written while the quarantine and the commit are: a load that dies before it is done
            # leaves files no run covers, which later checks read (and index), never skip.
            run = indexer.submit(
                KeyIndex(table, self.key_cache).write, [data_file.file_path for data_file in appender.data_files],
                hashes.parts(np.concatenate(repeats.rewritten) if repeats.rewritten else None))
        try:
            self._write_quarantine(quarantine_table, declared, path, sha256, quarantine)
            self.after_step("quarantine")
            appender.commit({SOURCE_HASH: sha256, SOURCE_FILE: path.name} | summary)
            self.after_step("publish")
        finally:
            indexer.shutdown(wait=True)
        if run is not None and run.exception() is not None:
            # Published all the same: the index only lets a check skip files, and files no run
            # covers are read. Said, so a slower next load has its reason in the log.
            LOG.warning("%s: the key index's run of this load was not written (%s); the next load of %s reads "
                        "these data files' keys instead", path.name, run.exception(), declared.full_name)
        message = ""
        if repeats.first_refused is not None:
            row, earliest = repeats.first_refused
            message = (f"{path.name}: {repeats.refused:,} rows repeat a key an earlier load published (the first, "
                       f"row {row}, from {earliest}); set aside in ops.quarantine as {ALREADY_LOADED}")
        result = LoadResult(declared.full_name, path.name, sha256, PUBLISHED, read, published, len(quarantine),
                            message, docs, repeats.updated, repeats.unchanged, repeats.refused, opposed_rows)
        self._record(files_table, result)
        self.after_step("record")
        return result

    def _docs_dir(self, declared: TableSchema, sha256: str) -> Path | None:
        """A new folder for this run's Data Docs, per table, named by time and file (None: no audit)."""
        if self.gx_dir is None:
            return None
        stem = self.gx_dir / declared.full_name / f"{self.clock():%Y%m%dT%H%M%S%fZ}-{sha256[:12]}"
        candidate, attempt = stem, 1
        while candidate.exists():  # a retry at the same instant (a fixed clock): keep both runs' docs
            attempt += 1
            candidate = stem.with_name(f"{stem.name}-{attempt}")
        return candidate

    def _reject(self, result: LoadResult, declared: TableSchema, path: Path, quarantine: Quarantine,
                quarantine_table: Any, files_table: Any) -> NoReturn:
        """Keep the rejected rows and the file's record for review, publish nothing, fail the load."""
        self._write_quarantine(quarantine_table, declared, path, result.sha256, quarantine)
        self._record(files_table, result)
        raise FileRejectedError(result.message)

    @staticmethod
    def _apply_rules(lake: pa.Table, rules: list[RowRule], bad: dict[int, str],
                     checked: dict[str, pa.Array] | None = None) -> None:
        """Name in ``bad`` each row's first broken rule; ``checked`` holds the violations of rules read already."""
        for rule in rules:
            violations = checked[rule.id] if checked and rule.id in checked else rule.violations(lake)
            if not pc.any(violations).as_py():
                continue  # the usual case: no row to pick out
            for row in np.flatnonzero(np.asarray(violations.to_numpy(zero_copy_only=False), dtype=bool)):
                bad.setdefault(int(row), rule.id)

    def _write_quarantine(self, quarantine_table: Any, declared: TableSchema, path: Path, sha256: str,
                          quarantine: Quarantine) -> None:
        if not quarantine or _first_row_of_file(quarantine_table, sha256, declared.full_name) is not None:
            return  # written before a crash: the retry computed the same rows
        now = self.clock()
        schema = to_arrow_schema(self.schemas["ops.quarantine"])
        # A batch at a time (the rows may be many, spilled to disk), published by one snapshot.
        appender = ChunkedAppend(quarantine_table, spill_dir=self.spill_dir)
        for batch in grouped(quarantine.batches(), self.flush_rows):
            count = batch.num_rows
            rows = pa.table({
                "target_table": pa.repeat(declared.full_name, count),
                "source_file": pa.repeat(path.name, count),
                "file_sha256": pa.repeat(sha256, count),
                "row_number": batch.column("row_number"),
                "rule": batch.column("rule"),
                "raw_reference": batch.column("raw_reference"),
                "earlier_file": batch.column("earlier_file"),
                "pseudonym_key_id": pa.repeat(self.pseudonymiser.key_id, count),
                "loaded_at": pa.repeat(pa.scalar(now, pa.timestamp("us", tz="UTC")), count),
            })
            appender.write(rows.select(schema.names).cast(schema))
        appender.commit({SOURCE_HASH: sha256, SOURCE_FILE: path.name})
        trim_history(quarantine_table, self.ops_history)

    def _record(self, files_table: Any, result: LoadResult) -> None:
        schema = to_arrow_schema(self.schemas["ops.ingested_files"])
        row = {
            "file_sha256": result.sha256, "file_name": result.file, "target_table": result.table,
            "row_count": result.rows_published, "quarantined_count": result.rows_quarantined,
            "status": result.status, "pseudonym_key_id": self.pseudonymiser.key_id, "loaded_at": self.clock(),
            "new_count": result.rows_new if result.status == PUBLISHED else 0,
            "updated_count": result.rows_updated, "unchanged_count": result.rows_unchanged,
            "refused_count": result.rows_refused, "opposed_count": result.rows_opposed,
        }
        files_table.append(pa.Table.from_pylist([row]).select(schema.names).cast(schema))
        trim_history(files_table, self.ops_history)
