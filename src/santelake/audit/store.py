"""The audit trail's store: one append-only PostgreSQL table, ``audit.records``, in a database of its own.

Three roles, made by the database superuser (``install``):

- the database and the table belong to the superuser, not to any account santelake runs as;
- ``audit_writer`` (the receiver) may INSERT and SELECT, nothing else;
- ``audit_reader`` (Trino's ``audit`` catalog, read by compliance officers) may SELECT.

A trigger refuses UPDATE, DELETE and TRUNCATE for everyone; a superuser can still switch it
off, which is what the hash chain is for. Appends take a transaction-scoped advisory lock, so
two receivers never fork the chain.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from santelake.audit.chain import GENESIS, Record, seal

DATABASE = "santelake_audit"
WRITER = "audit_writer"
READER = "audit_reader"
SCHEMA = "audit"  # written literally in the SQL below
# Any constant: the advisory lock every append takes.
CHAIN_LOCK = 0x5A4E7E1A
# Kinds a subject has at most one record of: Trino's events of a query (a retried delivery of one
# already sealed, because its answer was lost, gets the record it has, not a second one).
ONCE_PER_SUBJECT = frozenset({"trino.query_created", "trino.query_completed"})

Connect = Callable[[], Any]

_TABLE = """
create table if not exists audit.records (
    seq bigint primary key,
    recorded_at timestamptz not null,
    kind text not null,
    actor text not null,
    subject text not null,
    payload text not null,
    prev_hash char(64) not null,
    hash char(64) not null unique
)"""

_TRIGGER = """
create or replace function audit.refuse_change() returns trigger language plpgsql as $$
begin
    raise exception 'the audit trail is append-only: % on %.% refused', tg_op, tg_table_schema, tg_table_name;
end $$;
drop trigger if exists append_only on audit.records;
create trigger append_only before update or delete on audit.records
    for each row execute function audit.refuse_change();
drop trigger if exists append_only_truncate on audit.records;
create trigger append_only_truncate before truncate on audit.records
    for each statement execute function audit.refuse_change()"""

# What compliance officers read through Trino: one row per query event, its fields pulled out.
_QUERIES_VIEW = """
create or replace view audit.queries as
select r.seq, r.recorded_at, r.kind = 'trino.query_completed' as completed,
       r.subject as query_id,
       e #>> '{context,user}' as user_name,
       e #>> '{context,principal}' as principal,
       (e #> '{context,groups}')::text as groups,
       e #>> '{context,source}' as source,
       e #>> '{context,userAgent}' as user_agent,
       e #>> '{context,remoteClientAddress}' as client_address,
       e #>> '{metadata,query}' as query,
       e #>> '{metadata,queryState}' as state,
       (e #> '{ioMetadata,inputs}')::text as inputs,
       (e #>> '{statistics,outputRows}')::bigint as output_rows,
       e #>> '{failureInfo,errorCode,name}' as error_code,
       e #>> '{failureInfo,failureMessage}' as error_message,
       e #>> '{createTime}' as create_time,
       e #>> '{endTime}' as end_time,
       p #>> '{policy,rules_sha256}' as policy_rules_sha256,
       p #>> '{policy,revision}' as policy_revision
from audit.records r,
     lateral (select r.payload::jsonb as p) as payload,
     lateral (select p -> 'event' as e) as event
where r.kind in ('trino.query_created', 'trino.query_completed')"""


def install(connect_database: Callable[[str], Any], passwords: dict[str, str], database: str = DATABASE) -> None:
    """Create (or bring up to date) the roles, the database, the table, its trigger and views.

    ``connect_database(name)`` opens a superuser connection to database ``name``; ``passwords``
    holds the writer's and the reader's. Running it again changes nothing but the passwords.
    (``database``: another name, for a benchmark's scratch trail.)
    """
    from psycopg2 import sql

    conn = connect_database("postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for role in (WRITER, READER):
                cur.execute("select 1 from pg_roles where rolname = %s", (role,))
                verb = "alter" if cur.fetchone() else "create"
                cur.execute(sql.SQL(verb + " role {} with login password {}").format(
                    sql.Identifier(role), sql.Literal(passwords[role])))
            cur.execute("select 1 from pg_database where datname = %s", (database,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
            cur.execute(sql.SQL("revoke all on database {} from public").format(sql.Identifier(database)))
            cur.execute(sql.SQL("grant connect on database {} to {}, {}").format(
                sql.Identifier(database), sql.Identifier(WRITER), sql.Identifier(READER)))
    finally:
        conn.close()
    conn = connect_database(database)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("revoke all on schema public from public")
            cur.execute("create schema if not exists audit")
            cur.execute(_TABLE)
            # What reports and compliance's queries look records up by: a query id, a time, a kind.
            cur.execute("create index if not exists records_subject on audit.records (subject)")
            cur.execute("create index if not exists records_recorded_at on audit.records (recorded_at)")
            cur.execute("create index if not exists records_kind on audit.records (kind, seq)")
            cur.execute(_TRIGGER)
            cur.execute(_QUERIES_VIEW)
            cur.execute("revoke all on all tables in schema audit from public, audit_writer, audit_reader")
            cur.execute("grant usage on schema audit to audit_writer, audit_reader")
            cur.execute("grant select, insert on audit.records to audit_writer")
            cur.execute("grant select on all tables in schema audit to audit_reader")
    finally:
        conn.close()


@dataclass(frozen=True)
class Entry:
    """What a source says happened; the store seals it into the chain."""

    kind: str
    actor: str
    subject: str
    payload: Any
    recorded_at: dt.datetime | None = None


class AuditStore:
    """Appends to and reads the chain through ``connect()`` (a psycopg2 connection factory)."""

    def __init__(self, connect: Connect, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.connect = connect
        self.clock = clock
        self._conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = self.connect()
        return self._conn

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None

    def append(self, entries: Sequence[Entry]) -> list[Record]:
        """Seal ``entries`` onto the chain's head in one transaction; all or none are stored.

        A failure closes the connection (the next call opens a new one) and is raised.
        """
        from psycopg2.extras import execute_values

        conn = self._connection()
        try:
            with conn, conn.cursor() as cur:
                cur.execute("select pg_advisory_xact_lock(%s)", (CHAIN_LOCK,))
                cur.execute("select seq, hash from audit.records order by seq desc limit 1")
                row = cur.fetchone()
                seq, prev = (int(row[0]), str(row[1])) if row else (0, GENESIS)
                earlier = self._already_sealed(cur, entries)
                sealed: list[Record] = []
                result: list[Record] = []
                for entry in entries:
                    key = (entry.kind, entry.subject)
                    if entry.kind in ONCE_PER_SUBJECT and key in earlier:
                        result.append(earlier[key])  # delivered again (a retry): the record it already has
                        continue
                    seq += 1
                    record = seal(prev, seq, entry.recorded_at or self.clock(), entry.kind, entry.actor,
                                  entry.subject, entry.payload)
                    sealed.append(record)
                    result.append(record)
                    prev = record.hash
                    if entry.kind in ONCE_PER_SUBJECT:
                        earlier[key] = record
                if sealed:
                    execute_values(cur, "insert into audit.records (seq, recorded_at, kind, actor, subject, "
                                        "payload, prev_hash, hash) values %s",
                                   [(r.seq, r.recorded_at, r.kind, r.actor, r.subject, r.payload, r.prev_hash,
                                     r.hash) for r in sealed])
            return result
        except Exception:
            self.close()
            raise

    @staticmethod
    def _already_sealed(cur: Any, entries: Sequence[Entry]) -> dict[tuple[str, str], Record]:
        """The records already holding an entry that may be recorded once per subject (by kind and subject)."""
        keys = {(e.kind, e.subject) for e in entries if e.kind in ONCE_PER_SUBJECT}
        if not keys:
            return {}
        cur.execute("select seq, recorded_at, kind, actor, subject, payload, prev_hash, hash from audit.records "
                    "where subject = any(%s) and kind = any(%s)",
                    (sorted({s for _, s in keys}), sorted({k for k, _ in keys})))
        found = {}
        for row in cur.fetchall():
            record = Record(int(row[0]), row[1], row[2], row[3], row[4], row[5], row[6], row[7])
            if (record.kind, record.subject) in keys:
                found[(record.kind, record.subject)] = record
        return found

    def head(self) -> tuple[int, str]:
        """The last record's sequence number and hash (0 and the genesis hash when empty)."""
        conn = self._connection()
        with conn, conn.cursor() as cur:
            cur.execute("select seq, hash from audit.records order by seq desc limit 1")
            row = cur.fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    def newest(self, prefix: str, limit: int = 500) -> list[tuple[str, str]]:
        """(kind, payload) of the newest records whose kind starts with ``prefix``, newest first
        (on a connection of its own: another thread than the writer's asks)."""
        conn = self.connect()
        try:
            with conn, conn.cursor() as cur:
                cur.execute("select kind, payload from audit.records where kind like %s order by seq desc limit %s",
                            (prefix.replace("%", "") + "%", limit))
                return [(str(kind), str(payload)) for kind, payload in cur.fetchall()]
        finally:
            conn.close()

    def records(self, batch: int = 5000) -> Iterator[Record]:
        """Every record in ascending ``seq``, read in batches (memory flat in the trail's length)."""
        conn = self.connect()
        try:
            with conn, conn.cursor(name="audit_records") as cur:
                cur.itersize = batch
                cur.execute("select seq, recorded_at, kind, actor, subject, payload, prev_hash, hash "
                            "from audit.records order by seq")
                for row in cur:
                    yield Record(int(row[0]), row[1], row[2], row[3], row[4], row[5], row[6], row[7])
        finally:
            conn.close()


@dataclass(frozen=True)
class Purged:
    through_seq: int
    records: int
    purge_seq: int


def purge(writer: AuditStore, superuser: Connect, before: dt.datetime, actor: str, retention: str) -> Purged | None:
    """Remove the records made before ``before``, keeping the chain provable.

    First a purge record is sealed onto the chain (as the writer), naming the last record removed
    and its hash: ``verify`` takes the first kept record's link from it. Then the records up to
    that one are deleted as the database superuser (the append-only trigger switched off for this
    transaction only). Interrupted between the two, a rerun seals a new purge record and deletes.
    None when no record is that old.
    """
    from santelake.audit.chain import PURGE_KIND

    conn = superuser()
    try:
        with conn, conn.cursor() as cur:
            cur.execute("select seq, hash from audit.records where recorded_at < %s order by seq desc limit 1",
                        (before,))
            row = cur.fetchone()
        if row is None:
            return None
        through, last_hash = int(row[0]), str(row[1])
        record = writer.append([Entry(PURGE_KIND, actor, "", {"through_seq": through, "last_hash": last_hash,
                                                              "before": before.isoformat(),
                                                              "retention": retention})])[0]
        with conn, conn.cursor() as cur:
            cur.execute("set local session_replication_role = replica")
            cur.execute("delete from audit.records where seq <= %s", (through,))
            removed = cur.rowcount
    finally:
        conn.close()
    return Purged(through, removed, record.seq)
