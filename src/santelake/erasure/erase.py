"""Erasure: the registered persons out of every table, snapshot, file, landed extract and object version.

The steps, each logged as ``step <name>`` when it begins (a test kills the process there):

1. ``register``: the persons join the opposition register (pseudonyms only). From here on
   no load publishes them, whatever happens to this run.
2. ``lock``: the loads' lock, alone: no load runs while files are rewritten and deleted.
3. ``tables``: in every table with a person column (``TableSchema.person_columns``, from
   ``iceberg_schemas/``, and any other table with a column so named: ``person_tables``),
   each data file that holds a registered person, or that has delete files (Trino's
   merge-on-read deletes, which leave the row in the file), is rewritten with those deletes
   applied and without the persons' rows: one commit per table.
4. ``history``: every snapshot but the current one expired, and every object under the
   table's location that the current snapshot does not read deleted (the older files,
   manifests and manifest lists, and orphans written before the lock was taken).
5. ``landing``: a loaded or rejected extract that holds a person is deleted whole (a copy
   kept for review, not data of the lake). One still waiting is left: its load drops the
   persons and deletes it; the proof says so until then.
6. ``versions``: when a bucket keeps versions, the older versions under the tables and in
   the landing bucket are deleted.
7. ``proof``: every object of both buckets read (``proof``); the erasure is done only when
   none names a registered person.

Every step is idempotent: a person already gone leaves no file to rewrite, an expired
snapshot is not there to expire. A rerun after a crash at any point ends in the same state.
The erasure works on every registered person, not only those of this run: a person a
restored backup brought back is erased again.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import AlwaysTrue, BooleanExpression, In, Or

from santelake.erasure.proof import Needles, Proof, landed_hits, scan_bucket
from santelake.erasure.register import OppositionRegister, is_pseudonym
from santelake.errors import SantelakeError
from santelake.ingest.keyindex import KeyIndex, RunCache
from santelake.ingest.landing import INCOMING, LOADED, REJECTED
from santelake.lake.append import ChunkedAppend
from santelake.pseudonymise import Pseudonymiser
from santelake.pseudonymise.pseudonym import NIR_BODY, normalise_identifier
from santelake.pseudonymise.rekey import unrecorded_loads
from santelake.schema import TableSchema

ERASURE_PROPERTY = "santelake.erasure"
STEPS = ("register", "lock", "tables", "history", "landing", "versions", "proof")
COMMIT_ATTEMPTS = 3


class ErasureError(SantelakeError):
    """An erasure refused or stopped; the message says what and what to do."""


@dataclass(frozen=True)
class Persons:
    """The persons of one request: their pseudonyms, and their NIRs' bodies when given as NIRs (memory only)."""

    pseudonyms: frozenset[str]
    nirs: frozenset[str] = frozenset()


def read_persons(lines: Iterable[str], origin: str, pseudonymiser: Pseudonymiser, *, as_pseudonyms: bool) -> Persons:
    """One person a line (blank lines and ``#`` comments skipped); an error names the line, never the value."""
    import re

    pseudonyms, nirs, wrong = set(), set(), []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if as_pseudonyms:
            if not is_pseudonym(text):
                wrong.append(number)
                continue
            pseudonyms.add(text)
            continue
        body = normalise_identifier(text)
        if not re.fullmatch(NIR_BODY, body):
            wrong.append(number)
            continue
        nirs.add(body)
        pseudonyms.add(pseudonymiser.pseudonymise(body))
    if wrong:
        kind = "a pseudonym (64 lower-case hex characters)" if as_pseudonyms else \
            "a NIR (13 characters, or 15 with the key; 2A/2B for Corsica)"
        lines_named = ", ".join(map(str, wrong[:20])) + (" and more" if len(wrong) > 20 else "")
        raise ErasureError(f"{origin}: line(s) {lines_named}: not {kind}; nothing was registered or erased")
    if not pseudonyms:
        raise ErasureError(f"{origin}: no person given; nothing was registered or erased")
    return Persons(frozenset(pseudonyms), frozenset(nirs))


@dataclass(frozen=True)
class TableErasure:
    table: str
    rows_deleted: int
    files_rewritten: int
    files_with_deletes: int


@dataclass(frozen=True)
class HistoryErasure:
    table: str
    snapshots_expired: int
    files_deleted: int


@dataclass
class ErasureReport:
    erasure_id: str
    persons: int
    registered: int = 0
    tables: list[TableErasure] = field(default_factory=list)
    history: list[HistoryErasure] = field(default_factory=list)
    landed_deleted: list[str] = field(default_factory=list)
    landed_waiting: list[str] = field(default_factory=list)
    versions_deleted: int = 0
    proof: Proof = field(default_factory=Proof)

    @property
    def done(self) -> bool:
        return self.proof.clean and not self.landed_waiting

    def summary(self) -> dict[str, Any]:
        """For the audit trail and ``ops``: counts and places, never a person."""
        return {"erasure_id": self.erasure_id, "persons_registered": self.registered, "persons_requested": self.persons,
                "tables": [asdict(t) for t in self.tables], "history": [asdict(h) for h in self.history],
                "landed_deleted": self.landed_deleted, "landed_waiting": self.landed_waiting,
                "versions_deleted": self.versions_deleted, "proof": self.proof.summary(),
                "done": self.done}


def _any_of(names: list[str], values: list[str]) -> BooleanExpression:
    return functools.reduce(Or, [In(name, values) for name in names])  # type: ignore[arg-type,call-arg]


def _person_mask(table: pa.Table, names: list[str], opposed: pa.Array) -> pa.Array:
    masks = [pc.fill_null(pc.is_in(table.column(name), value_set=opposed), False) for name in names]
    return functools.reduce(pc.or_, masks)


def _holds(table: Any, task: Any, names: list[str], opposed: pa.Array) -> bool:
    """Whether the data file itself (its delete files not applied) holds a registered person."""
    from pyiceberg.io.pyarrow import ArrowScan
    from pyiceberg.table import FileScanTask

    schema = table.schema()
    projected = schema.select(*names)
    rows = ArrowScan(table.metadata, table.io, projected, AlwaysTrue()).to_table([FileScanTask(task.file)])
    return bool(pc.any(_person_mask(rows, names, opposed)).as_py())


@dataclass(frozen=True)
class PersonTable:
    """A table of the catalog holding persons, and the names its person columns have now."""

    name: str
    identifier: tuple[str, ...]
    columns: tuple[str, ...]
    declared: TableSchema | None  # None: a table outside iceberg_schemas/ (a copy made through Trino, say)


def person_tables(catalog: Any, schemas: dict[str, TableSchema]) -> list[PersonTable]:
    """Every table of the catalog holding a person column, by name.

    A declared table's person columns are its ``direct_identifier`` columns, found by field id
    (a renamed column is the same column). A table outside ``iceberg_schemas/`` (a data
    engineer's copy, a bench's namespace) holds persons if it has a string column named as a
    declared table names a person column (``person_id``, ``raw_reference``).
    """
    from pyiceberg.types import StringType

    declared = {d.full_name: d for d in schemas.values() if d.person_columns}
    person_names = {c.name for d in declared.values() for c in d.person_columns}
    found = []
    for namespace in catalog.list_namespaces():
        for identifier in catalog.list_tables(namespace):
            name = ".".join(identifier)
            schema = catalog.load_table(identifier).schema()
            own = declared.get(name)
            if own is not None:
                columns = tuple(schema.find_field(c.field_id).name for c in own.person_columns)
            else:
                columns = tuple(f.name for f in schema.fields
                                if f.name in person_names and isinstance(f.field_type, StringType))
            if columns:
                found.append(PersonTable(name, tuple(identifier), columns, own))
    return sorted(found, key=lambda t: t.name)


def erase_table(table: Any, target: PersonTable, opposed: pa.Array, erasure_id: str) -> TableErasure:
    """Rewrite the files of ``table`` holding a registered person or carrying delete files, in one commit."""
    from pyiceberg.io.pyarrow import ArrowScan

    schema = table.schema()
    names = list(target.columns)
    if table.current_snapshot() is None or not names:
        return TableErasure(target.name, 0, 0, 0)
    values = opposed.to_pylist()
    maybe = {t.file.file_path for t in table.scan(row_filter=_any_of(names, values)).plan_files()} if values else set()
    rewrite = [task for task in table.scan().plan_files()
               if task.delete_files or (task.file.file_path in maybe and _holds(table, task, names, opposed))]
    if not rewrite:
        return TableErasure(target.name, 0, 0, 0)
    deleted = 0
    # Replaced and written files in one overwrite (ChunkedAppend keeps the new files' names
    # unique across the files of a partition).
    change = ChunkedAppend(table)
    for task in rewrite:
        # The rows as a reader sees them (delete files applied), then without the persons.
        rows = ArrowScan(table.metadata, table.io, schema, AlwaysTrue()).to_table([task])
        kept = rows.filter(pc.invert(_person_mask(rows, names, opposed)))
        deleted += rows.num_rows - kept.num_rows
        change.replaced.append(task.file)
        change.write(kept)
    change.commit({ERASURE_PROPERTY: erasure_id})
    return TableErasure(target.name, deleted, len(rewrite), sum(1 for t in rewrite if t.delete_files))


def _live_files(table: Any) -> set[str]:
    """Every object the current snapshot reads, and the current metadata file."""
    live = {table.metadata_location}
    snapshot = table.current_snapshot()
    if snapshot is None:
        return live
    live.add(snapshot.manifest_list)
    for manifest in snapshot.manifests(table.io):
        live.add(manifest.manifest_path)
        live.update(entry.data_file.file_path for entry in manifest.fetch_manifest_entry(table.io))
    for statistics in table.metadata.statistics:
        live.add(statistics.statistics_path)
    return live


def _split(location: str) -> tuple[str, str]:
    scheme, _, rest = location.partition("://")
    if scheme not in ("s3", "s3a"):
        raise ErasureError(f"table location {location} is not on the object store; the erasure reads s3:// only")
    bucket, _, key = rest.partition("/")
    return bucket, key


def _without_removed_entries(table: Any) -> Any:
    """``table`` with a current snapshot that reads no manifest of removed files only.

    An overwrite (the rewrite of ``erase_table``) lists the files it removes in a manifest of
    their own, each entry with the file's column bounds: the lowest or highest pseudonym of a
    removed file is an erased person's when that person sorted first or last in it. An append
    after it carries only the manifests with live files, so the manifest of removed entries is
    read by no snapshot once the older ones expire. An empty append is such a commit; run at
    every erasure (not only after a rewrite), so a rerun after a crash between the two commits
    still makes it.
    """
    current = table.current_snapshot()
    if current is None or all(m.has_added_files() or m.has_existing_files() for m in current.manifests(table.io)):
        return table
    with table.transaction() as transaction, transaction.update_snapshot().fast_append():
        pass
    return table.refresh()


def forget_table_history(table: Any, name: str, client: Any, locked_at: dt.datetime) -> HistoryErasure:
    """Expire every snapshot but the current one and delete every object the current one does not read.

    An object written after ``locked_at`` is left: a writer not bound by the lock (Trino) may
    be about to commit it; the proof finds it if it names a person.
    """
    table = _without_removed_entries(table)
    current = table.current_snapshot()
    old = [s.snapshot_id for s in table.metadata.snapshots if current is None or s.snapshot_id != current.snapshot_id]
    if old:
        table.maintenance.expire_snapshots().by_ids(old).commit()
        table = table.refresh()
    live = _live_files(table)
    bucket, prefix = _split(table.metadata.location)
    deleted = 0
    for item in client.list_objects(bucket, prefix=prefix.rstrip("/") + "/", recursive=True):
        path = f"s3://{bucket}/{item.object_name}"
        if path in live or item.object_name.endswith(".metadata.json") or item.last_modified >= locked_at:
            continue  # metadata files name no person (snapshot summaries, schemas): kept for the log
        client.remove_object(bucket, item.object_name)
        deleted += 1
    return HistoryErasure(name, len(old), deleted)


def _versioned(client: Any, bucket: str) -> bool:
    from minio.error import S3Error

    try:
        config = client.get_bucket_versioning(bucket)
    except S3Error as exc:
        # Not knowing whether older versions exist, the erasure cannot say they are gone.
        raise ErasureError(f"the storage account cannot read whether bucket {bucket} keeps object versions "
                           f"({exc.code}); grant it s3:GetBucketVersioning, s3:ListBucketVersions, "
                           "s3:GetObjectVersion and s3:DeleteObjectVersion on the warehouse and landing buckets "
                           "(docs/compliance.md), then run `santelake erase` again") from None
    return str(getattr(config, "status", "Off")) in ("Enabled", "Suspended")


def delete_old_versions(client: Any, bucket: str, prefix: str = "") -> int:
    """Every version of ``bucket`` under ``prefix`` that is not the latest, and every delete marker."""
    if not _versioned(client, bucket):
        return 0
    deleted = 0
    for item in client.list_objects(bucket, prefix=prefix or None, recursive=True, include_version=True):
        # minio-py gives IsLatest as the XML's text, "true" or "false" (a non-empty string either way).
        if str(item.is_latest).lower() == "true" and not item.is_delete_marker:
            continue
        client.remove_object(bucket, item.object_name, version_id=item.version_id)
        deleted += 1
    return deleted


class Erasure:
    """An erasure on one installation: its catalog, declared tables, key chain and object store."""

    def __init__(self, catalog: Any, schemas: dict[str, TableSchema], pseudonymiser: Pseudonymiser, client: Any,
                 warehouse_bucket: str, landing_bucket: str, log: Callable[[str], None] = print,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 key_cache: RunCache | None = None) -> None:
        self.catalog, self.schemas, self.pseudonymiser, self.client = catalog, schemas, pseudonymiser, client
        self.warehouse_bucket, self.landing_bucket = warehouse_bucket, landing_bucket
        self.register = OppositionRegister.of(catalog)
        self.log, self.clock = log, clock
        # The loads' local copies of the key index's runs (this machine's): forgotten with the runs.
        self.key_cache = key_cache

    def _step(self, name: str) -> None:
        self.log(f"step {name}")

    def run(self, persons: Persons | None) -> ErasureReport:
        """Register ``persons`` (None: none new) and erase every registered person; the report says what was done."""
        # Before anything changes: an account that cannot see object versions is refused here.
        for bucket in (self.warehouse_bucket, self.landing_bucket):
            _versioned(self.client, bucket)
        erasure_id = f"erasure-{self.clock():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        key_id = self.pseudonymiser.key_id
        self._step("register")
        requested = len(persons.pseudonyms) if persons else 0
        report = ErasureReport(erasure_id, requested)
        if persons:
            report.registered = self.register.add(persons.pseudonyms, key_id, erasure_id)
        everyone = self.register.pseudonyms(key_id)
        if not everyone:
            raise ErasureError("the opposition register is empty: give the persons to erase (NIRs or pseudonyms)")
        self.register.started(erasure_id, len(everyone))
        opposed = pa.array(sorted(everyone), pa.string())
        needles = Needles(everyone, persons.nirs if persons else ())
        self._step("lock")
        with self.register.lake_lock(exclusive=True, log=self.log):
            locked_at = self.clock()
            self._step("tables")
            targets = person_tables(self.catalog, self.schemas)
            for target in targets:
                report.tables.append(self._erase_table(target, opposed, erasure_id))
            self._step("history")
            for target in targets:
                table = self.catalog.load_table(target.identifier)
                # Only a declared table's loads are recorded in ops.ingested_files (a bench's are not).
                unrecorded = unrecorded_loads(self.catalog, self.schemas, table) if target.declared else []
                if unrecorded:
                    # Its retry finds the load by its snapshot; expired, the retry would publish it twice.
                    raise ErasureError(f"table {target.name} has loads not recorded in ops.ingested_files: "
                                       f"{', '.join(unrecorded)}; the persons' rows are already deleted, but its "
                                       "history is not: retry those loads (they wait in the landing bucket), "
                                       "then run `santelake erase` again")
                report.history.append(forget_table_history(table, target.name, self.client, locked_at))
                KeyIndex(table, self.key_cache).forget_cached()
            self._step("landing")
            self._erase_landed(needles, report)
            self._step("versions")
            for target in targets:
                bucket, prefix = _split(self.catalog.load_table(target.identifier).metadata.location)
                report.versions_deleted += delete_old_versions(self.client, bucket, prefix.rstrip("/") + "/")
            report.versions_deleted += delete_old_versions(self.client, self.landing_bucket)
            self._step("proof")
            report.proof = self.prove(needles)
        if report.done:
            self.register.finished(erasure_id, json.dumps(report.summary()))
            # Every erasure the register still showed as under way is done by this one too.
            for pending in self.register.pending():
                self.register.finished(pending, json.dumps({"completed_by": erasure_id}))
        return report

    def _erase_table(self, target: PersonTable, opposed: pa.Array, erasure_id: str) -> TableErasure:
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            table = self.catalog.load_table(target.identifier)
            try:
                return erase_table(table, target, opposed, erasure_id)
            except CommitFailedException as exc:
                # A writer outside the lock (Trino) committed meanwhile: read the table again.
                if attempt == COMMIT_ATTEMPTS:
                    raise ErasureError(f"table {target.name} kept changing while it was rewritten "
                                       f"({COMMIT_ATTEMPTS} attempts); nothing of it was changed by the last; "
                                       "stop the writes through Trino and run `santelake erase` again") from exc
        raise AssertionError("unreachable")

    def _landed(self, needles: Needles) -> Callable[[str, bytes], list[str]]:
        return lambda _key, data: landed_hits(data, needles, self.pseudonymiser)

    def _erase_landed(self, needles: Needles, report: ErasureReport) -> None:
        for state in (LOADED, REJECTED, INCOMING):
            found = Proof()
            scan_bucket(self.client, self.landing_bucket, needles, found, prefix=f"{state}/",
                        landed=self._landed(needles))
            for hit in found.hits:
                key = hit.location.removeprefix(f"s3://{self.landing_bucket}/")
                if state == INCOMING:
                    report.landed_waiting.append(key)
                    continue
                self.client.remove_object(self.landing_bucket, key)
                report.landed_deleted.append(key)

    def prove(self, needles: Needles) -> Proof:
        """Read every object (every version) of the warehouse and landing buckets for the persons."""
        proof = Proof()
        scan_bucket(self.client, self.warehouse_bucket, needles, proof,
                    versions=_versioned(self.client, self.warehouse_bucket))
        scan_bucket(self.client, self.landing_bucket, needles, proof,
                    versions=_versioned(self.client, self.landing_bucket), landed=self._landed(needles))
        return proof
