"""Re-keying the lake: every pseudonym re-made under a new key, one atomic commit per table.

Raw identifiers are never kept, so new pseudonyms are made from the old ones: re-keying
with K2 turns each stored pseudonym p into HMAC(K2, p), and the installation's key chain
grows from [K1] to [K1, K2], with which later loads make HMAC(K2, HMAC(K1, x)) directly:
new rows link to old ones. The order makes a crash at any point resumable:

1. Check: the new key is not in the chain; every table holding pseudonyms records the
   current chain (to re-key) or the new one (re-keyed by an interrupted run); nothing is
   changed if any table records another key.
2. Stamp the current chain's id on tables that record none yet, so a load can be checked
   against the table it writes to (``check_tables``).
3. Save the new chain, before any pseudonym depends on the new key.
4. Each table in turn, in one Iceberg transaction: every pseudonymised column rewritten
   and the table's key id set. A table is wholly old or wholly new; a table that already
   records the new chain is skipped, so a second run is a no-op.

Old snapshots still hold old pseudonyms until ``forget_history`` expires them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import AlwaysTrue

from santelake.erasure.register import OppositionRegister
from santelake.errors import SantelakeError
from santelake.ingest.identity import SOURCE_FILE
from santelake.ingest.keyindex import KeyIndex
from santelake.ingest.load import SOURCE_HASH
from santelake.lake.stream import file_by_file, grouped
from santelake.pseudonymise.key import CHAIN_ID_SEPARATOR, KEY_ID_PROPERTY, chain_id_of, key_id_of
from santelake.pseudonymise.pseudonym import Pseudonymiser
from santelake.schema import TableSchema

# Summary property of the snapshots a re-keying commits: the id of the chain they were made with.
REKEY_PROPERTY = "santelake.rekeyed-to"
# A column stating the key of the pseudonyms in its row (ops.quarantine): re-keyed with them.
KEY_ID_COLUMN = "pseudonym_key_id"
FILES_TABLE = "ops.ingested_files"
REKEYED = "rekeyed"
ALREADY = "already-rekeyed"
CHUNK_ROWS = 500_000
_PSEUDONYM = r"^[0-9a-f]{64}$"


class RekeyError(SantelakeError):
    """Re-keying refused or stopped; the message says which table and what to do."""


@dataclass(frozen=True)
class TableRekey:
    table: str
    status: str
    rows: int
    columns: tuple[str, ...]


@dataclass(frozen=True)
class RekeyReport:
    old_key_id: str
    new_key_id: str
    tables: tuple[TableRekey, ...]

    def summary(self, forgotten: Sequence[Any] = ()) -> dict[str, Any]:
        """For the audit trail: the keys' ids (never a key), each table's outcome, the history expired."""
        from dataclasses import asdict

        return {"old_key_id": self.old_key_id, "new_key_id": self.new_key_id,
                "tables": [asdict(t) for t in self.tables], "history_expired": [asdict(f) for f in forgotten]}


def pseudonymised_tables(schemas: Mapping[str, TableSchema]) -> list[TableSchema]:
    """The declared tables holding pseudonyms, in the order they are re-keyed: by name."""
    holding = (declared for declared in schemas.values() if any(c.pseudonymised for c in declared.lake_columns))
    return sorted(holding, key=lambda declared: declared.full_name)


def _loaded_key_ids(catalog: Any, schemas: Mapping[str, TableSchema], declared: TableSchema) -> set[str]:
    """The key ids the ops records give for a table that records none itself (loaded before tables did)."""
    if any(column.name == KEY_ID_COLUMN for column in declared.lake_columns):
        table = catalog.load_table(declared.identifier)
        values = table.scan(selected_fields=(KEY_ID_COLUMN,)).to_arrow()[KEY_ID_COLUMN]
        return {str(v) for v in pc.unique(values).to_pylist() if v is not None}
    files = schemas.get(FILES_TABLE)
    if files is None or not catalog.table_exists(files.identifier):
        return set()
    # Both values are ours: a declared table name and a status the loader writes.
    condition = f"target_table == '{declared.full_name}' AND status == 'published'"
    rows = catalog.load_table(files.identifier).scan(row_filter=condition, selected_fields=(KEY_ID_COLUMN,))
    return {str(v) for v in pc.unique(rows.to_arrow()[KEY_ID_COLUMN]).to_pylist() if v is not None}


def recorded_key_ids(catalog: Any, schemas: Mapping[str, TableSchema], declared: TableSchema) -> set[str]:
    """The key id the table records, else those its load records give; empty when nothing says."""
    recorded = catalog.load_table(declared.identifier).properties.get(KEY_ID_PROPERTY)
    return {recorded} if recorded else _loaded_key_ids(catalog, schemas, declared)


def _advice(recorded: str, key_id: str) -> str:
    if key_id.startswith(recorded + CHAIN_ID_SEPARATOR):
        return "a re-keying is under way: finish it with `santelake rekey --new-key-file` and the same new key"
    if recorded.startswith(key_id + CHAIN_ID_SEPARATOR):
        return "the table was re-keyed since: use the installation's whole key chain, newest key last"
    return "use the key chain this lake was pseudonymised with"


def check_tables(catalog: Any, schemas: Mapping[str, TableSchema], pseudonymiser: Pseudonymiser) -> None:
    """Refuse to load with a key chain other than the one the lake's tables record."""
    for declared in pseudonymised_tables(schemas):
        if not catalog.table_exists(declared.identifier):
            continue
        recorded = catalog.load_table(declared.identifier).properties.get(KEY_ID_PROPERTY)
        if recorded and recorded != pseudonymiser.key_id:
            raise RekeyError(
                f"table {declared.full_name} records pseudonym key {recorded}, but the key chain in use is "
                f"{pseudonymiser.key_id}; pseudonyms would not link; {_advice(recorded, pseudonymiser.key_id)}"
            )


def _chains(chain: Sequence[bytes], new_key: bytes) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """The chain before and after re-keying; the new key last in ``chain`` means an interrupted run."""
    if not chain:
        raise RekeyError("no current key chain: re-keying needs the key the lake was pseudonymised with")
    new_id = key_id_of(new_key)
    if len(chain) == 1 and chain[0] == new_key:
        raise RekeyError(f"the new key {new_id} is the key in use; make a new one and pass that")
    if new_key in chain[:-1]:
        raise RekeyError(f"the new key {new_id} was used before in the key chain {chain_id_of(chain)}; "
                         "a key is used once: make a new one and pass that")
    if chain[-1] == new_key:
        return tuple(chain[:-1]), tuple(chain)
    return tuple(chain), (*chain, new_key)


def _rekeyed(chunk: pa.Table, name: str, columns: Sequence[str], step: Pseudonymiser, new_id: str) -> pa.Table:
    for column in columns:
        index = chunk.schema.get_field_index(column)
        values = chunk.column(index)
        # Stored pseudonyms are 64 lower-case hex characters, which normalisation leaves as they
        # are: HMAC(K2, p) is then exactly the chain's last step. Anything else is not ours.
        wrong = pc.sum(pc.invert(pc.match_substring_regex(values, _PSEUDONYM))).as_py() or 0
        if wrong:
            raise RekeyError(f"table {name}, column {column}: {wrong} value(s) are not pseudonyms (64 hex "
                             "characters); nothing of the table was changed; find how they were written first")
        rekeyed = step.pseudonymise_array(values.combine_chunks())
        chunk = chunk.set_column(index, chunk.schema.field(index), rekeyed.cast(values.type))
    if KEY_ID_COLUMN in chunk.column_names:
        index = chunk.schema.get_field_index(KEY_ID_COLUMN)
        field = chunk.schema.field(index)
        chunk = chunk.set_column(index, field, pa.array([new_id] * chunk.num_rows, field.type))
    return chunk


def _rekey_table(table: Any, declared: TableSchema, step: Pseudonymiser, new_id: str) -> TableRekey:
    schema = table.schema()
    # By field id: a column renamed in its file is still the same column.
    columns = tuple(schema.find_field(c.field_id).name for c in declared.lake_columns if c.pseudonymised)
    properties = {REKEY_PROPERTY: new_id}
    transaction = table.transaction()
    rows = 0
    if table.current_snapshot() is not None:
        # One data file at a time (pyiceberg's batch reader would hold every file at once),
        # in chunks of about CHUNK_ROWS, so memory does not grow with the table.
        chunks = grouped(file_by_file(table), CHUNK_ROWS)
        transaction.delete(AlwaysTrue(), snapshot_properties=properties)
        for chunk in chunks:
            transaction.append(_rekeyed(chunk, declared.full_name, columns, step, new_id),
                               snapshot_properties=properties)
            rows += chunk.num_rows
    transaction.set_properties({KEY_ID_PROPERTY: new_id})
    try:
        transaction.commit_transaction()
    except CommitFailedException as exc:
        raise RekeyError(f"table {declared.full_name} changed while it was re-keyed (a load?); nothing of it "
                         "was changed; pause the ingestion DAGs and run `santelake rekey` again") from exc
    return TableRekey(declared.full_name, REKEYED, rows, columns)


def rekey(catalog: Any, schemas: Mapping[str, TableSchema], chain: Sequence[bytes], new_key: bytes,
          save_chain: Callable[[tuple[bytes, ...]], None], *,
          after_table: Callable[[str], None] = lambda _: None) -> RekeyReport:
    """Re-key every declared table holding pseudonyms from ``chain`` to ``chain`` + ``new_key``.

    ``save_chain`` stores the new chain where loads read it; it is called before any table
    changes. ``after_table`` is called after each table's commit (tests stop there).
    """
    old_chain, new_chain = _chains(chain, new_key)
    old_id, new_id = chain_id_of(old_chain), chain_id_of(new_chain)
    present = [d for d in pseudonymised_tables(schemas) if catalog.table_exists(d.identifier)]
    recorded = {d.full_name: recorded_key_ids(catalog, schemas, d) for d in present}
    wrong = [f"{name} records {', '.join(sorted(ids))}" for name, ids in recorded.items()
             if not (ids <= {old_id} or ids == {new_id})]
    if wrong:
        raise RekeyError(f"cannot re-key from key chain {old_id} to {new_id}; nothing was changed; tables "
                         f"made with another key: {'; '.join(wrong)}. Re-key only with the chain they record.")
    for declared in present:
        table = catalog.load_table(declared.identifier)
        if KEY_ID_PROPERTY not in table.properties:
            # No record at all is taken as the current chain: nothing was loaded under another.
            stamp = next(iter(recorded[declared.full_name]), old_id)
            table.transaction().set_properties({KEY_ID_PROPERTY: stamp}).commit_transaction()
    if new_chain != tuple(chain):
        save_chain(new_chain)
    step = Pseudonymiser.from_key(new_chain[-1])
    # The opposition register too: it holds pseudonyms only, and must keep naming the same persons.
    engine = getattr(catalog, "engine", None)
    if engine is not None:
        def rekeyed(values: list[str]) -> list[str]:
            return list(step.pseudonymise_array(pa.array(values, pa.string())).to_pylist())

        OppositionRegister(engine).rekey(old_id, new_id, rekeyed)
    done = []
    for declared in present:
        table = catalog.load_table(declared.identifier)
        if table.properties.get(KEY_ID_PROPERTY) == new_id:
            done.append(TableRekey(declared.full_name, ALREADY, 0, ()))
            continue
        done.append(_rekey_table(table, declared, step, new_id))
        after_table(declared.full_name)
    return RekeyReport(old_id, new_id, tuple(done))


@dataclass(frozen=True)
class Forgotten:
    table: str
    snapshots: int
    files: int


def _live_files(table: Any, snapshot: Any) -> set[str]:
    """Every file a snapshot reads: its manifest list, manifests, and their live data and delete files."""
    files = {snapshot.manifest_list}
    for manifest in snapshot.manifests(table.io):
        files.add(manifest.manifest_path)
        files.update(entry.data_file.file_path for entry in manifest.fetch_manifest_entry(table.io))
    return files


def _all_files(table: Any, snapshot: Any) -> set[str]:
    files = {snapshot.manifest_list}
    for manifest in snapshot.manifests(table.io):
        files.add(manifest.manifest_path)
        entries = manifest.fetch_manifest_entry(table.io, discard_deleted=False)
        files.update(entry.data_file.file_path for entry in entries)
    return files


def unrecorded_loads(catalog: Any, schemas: Mapping[str, TableSchema], table: Any) -> list[str]:
    """Files a snapshot has but ops.ingested_files does not: their retry needs the snapshot to stay."""
    hashes = {s.summary.additional_properties.get(SOURCE_HASH): s.summary.additional_properties.get(SOURCE_FILE)
              for s in table.metadata.snapshots if s.summary is not None}
    hashes.pop(None, None)
    if not hashes:
        return []
    files = catalog.load_table(schemas[FILES_TABLE].identifier).scan(selected_fields=("file_sha256",)).to_arrow()
    recorded = set(files["file_sha256"].to_pylist())
    return sorted(f"{name} ({sha})" for sha, name in hashes.items() if sha not in recorded)


def forget_history(catalog: Any, schemas: Mapping[str, TableSchema], key_id: str) -> list[Forgotten]:
    """Expire every snapshot but the current one of each table re-keyed to ``key_id``, and delete their files.

    Old snapshots hold old pseudonyms (and manifests hold prefixes of them as column bounds).
    A table whose snapshots record a load that ``ops.ingested_files`` does not (a load that
    died before its record) is refused: the retry of that load finds it by its snapshot.
    """
    forgotten = []
    for declared in pseudonymised_tables(schemas):
        if not catalog.table_exists(declared.identifier):
            continue
        table = catalog.load_table(declared.identifier)
        other = recorded_key_ids(catalog, schemas, declared) - {key_id}
        if other:
            raise RekeyError(f"table {declared.full_name} records key {', '.join(sorted(other))}, not {key_id}: "
                             "run `santelake rekey` to the end before expiring its history")
        current = table.current_snapshot()
        old = [s for s in table.metadata.snapshots if current is None or s.snapshot_id != current.snapshot_id]
        if not old:
            forgotten.append(Forgotten(declared.full_name, 0, 0))
            continue
        pending = unrecorded_loads(catalog, schemas, table)
        if pending:
            raise RekeyError(f"table {declared.full_name} has loads not recorded in {FILES_TABLE}: "
                             f"{', '.join(pending)}; retry their loads first, then expire")
        kept = _live_files(table, current) if current is not None else set()
        dropped = set().union(*(_all_files(table, snapshot) for snapshot in old)) - kept
        # Metadata first: a crash before the deletes leaves orphan files no snapshot reads.
        table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in old]).commit()
        for path in sorted(dropped):
            table.io.delete(path)
        # The key index's runs of the dropped files hold hashes of the old pseudonyms.
        KeyIndex(table).prune(kept)
        forgotten.append(Forgotten(declared.full_name, len(old), len(dropped)))
    return forgotten
