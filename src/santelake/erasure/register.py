"""The opposition register: the persons who objected, as pseudonyms only, in the catalog's database.

It lives beside the Iceberg catalog's own tables (the database every load already reads),
not in the warehouse bucket: the erasure's proof scans every object of that bucket for the
persons, and the register is the one place that must still name them, so later loads keep
them out. A row holds a pseudonym under the key chain its ``key_id`` names; ``santelake
rekey`` re-keys the register with the tables (``rekey_register``), so it survives a re-keying.

Loads and erasures meet here too, on one PostgreSQL advisory lock: a load holds it shared
from its first read of the register to its record; an erasure holds it alone while it
rewrites tables and deletes files, so it never deletes a file a load is about to commit and
no load publishes a person between the erasure's rewrite and its proof.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import sqlalchemy as sa

from santelake.errors import SantelakeError

REGISTER_TABLE = "santelake_opposition"
ERASURES_TABLE = "santelake_erasures"
# pg_advisory_lock's key for loads (shared) and erasures (exclusive): "santelake" in a bigint.
LAKE_LOCK = 0x5A4E7E1A4B0001
# The first of the two int4 keys of one table's load lock (a key space apart from LAKE_LOCK's bigint).
TABLE_LOCK_CLASS = 0x5A4E
_PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")

_metadata = sa.MetaData()
opposition = sa.Table(
    REGISTER_TABLE, _metadata,
    sa.Column("pseudonym", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(200), nullable=False),
    sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("erasure_id", sa.String(40), nullable=False),
    sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
)
erasures = sa.Table(
    ERASURES_TABLE, _metadata,
    sa.Column("erasure_id", sa.String(40), primary_key=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("persons", sa.Integer, nullable=False),
    sa.Column("outcome", sa.Text, nullable=True),
)


class RegisterError(SantelakeError):
    """The register cannot be read or changed as asked; the message says why and what to do."""


def is_pseudonym(value: str) -> bool:
    return bool(_PSEUDONYM.match(value))


class OppositionRegister:
    """The register in the catalog's database (``engine``: the catalog's SQLAlchemy engine)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    @classmethod
    def of(cls, catalog: Any) -> OppositionRegister:
        return cls(catalog.engine)

    def install(self) -> None:
        _metadata.create_all(self.engine, checkfirst=True)

    def exists(self) -> bool:
        return bool(sa.inspect(self.engine).has_table(REGISTER_TABLE))

    def add(self, pseudonyms: Iterable[str], key_id: str, erasure_id: str,
            now: dt.datetime | None = None) -> int:
        """Register each pseudonym (made under ``key_id``); returns how many were new."""
        values = sorted(set(pseudonyms))
        wrong = [i for i, value in enumerate(values) if not is_pseudonym(value)]
        if wrong:
            raise RegisterError(f"{len(wrong)} value(s) are not pseudonyms (64 lower-case hex characters)")
        self.install()
        when = now or dt.datetime.now(dt.UTC)
        with self.engine.begin() as connection:
            self._check_key(connection, key_id)
            known = {row[0] for row in connection.execute(
                sa.select(opposition.c.pseudonym).where(opposition.c.pseudonym.in_(values)))} if values else set()
            new = [v for v in values if v not in known]
            if new:
                connection.execute(opposition.insert(), [
                    {"pseudonym": v, "key_id": key_id, "registered_at": when, "erasure_id": erasure_id,
                     "erased_at": None} for v in new])
            if known:
                # Registered before: this erasure takes them on again (a restore brought them back, say).
                connection.execute(opposition.update().where(opposition.c.pseudonym.in_(sorted(known)))
                                   .values(erased_at=None, erasure_id=erasure_id))
        return len(new)

    def _check_key(self, connection: Any, key_id: str) -> None:
        other = [row[0] for row in connection.execute(
            sa.select(opposition.c.key_id).where(opposition.c.key_id != key_id).distinct())]
        if other:
            raise RegisterError(f"the opposition register holds pseudonyms under key chain {', '.join(other)}, not "
                                f"{key_id}: finish the re-keying (`santelake rekey`) before loading or erasing")

    def pseudonyms(self, key_id: str, erasure_id: str | None = None) -> frozenset[str]:
        """Every pseudonym registered under the key chain ``key_id`` (or one erasure's).

        Rows under another chain are not this chain's persons: a catalog shared by a test's or
        a bench's own key holds them. On an installation there is one chain; a load under a
        chain the tables do not record is refused before this (``rekey.check_tables``).
        """
        if not self.exists():
            return frozenset()
        with self.engine.connect() as connection:
            query = sa.select(opposition.c.pseudonym).where(opposition.c.key_id == key_id)
            if erasure_id is not None:
                query = query.where(opposition.c.erasure_id == erasure_id)
            return frozenset(row[0] for row in connection.execute(query))

    def pending(self) -> list[str]:
        """The erasures some person of which is registered but not yet erased (an interrupted run)."""
        if not self.exists():
            return []
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(opposition.c.erasure_id).where(opposition.c.erased_at.is_(None))
                                      .distinct().order_by(opposition.c.erasure_id))
            return [row[0] for row in rows]

    def count(self) -> tuple[int, int]:
        """(registered, erased)."""
        if not self.exists():
            return 0, 0
        with self.engine.connect() as connection:
            total = connection.execute(sa.select(sa.func.count()).select_from(opposition)).scalar_one()
            done = connection.execute(sa.select(sa.func.count()).select_from(opposition)
                                      .where(opposition.c.erased_at.is_not(None))).scalar_one()
        return int(total), int(done)

    def started(self, erasure_id: str, persons: int, now: dt.datetime | None = None) -> None:
        self.install()
        with self.engine.begin() as connection:
            exists = connection.execute(sa.select(erasures.c.erasure_id)
                                        .where(erasures.c.erasure_id == erasure_id)).first()
            if exists is None:
                connection.execute(erasures.insert().values(erasure_id=erasure_id, persons=persons,
                                                            started_at=now or dt.datetime.now(dt.UTC)))

    def finished(self, erasure_id: str, outcome: str, now: dt.datetime | None = None) -> None:
        when = now or dt.datetime.now(dt.UTC)
        with self.engine.begin() as connection:
            connection.execute(erasures.update().where(erasures.c.erasure_id == erasure_id)
                               .values(finished_at=when, outcome=outcome))
            connection.execute(opposition.update().where(opposition.c.erasure_id == erasure_id)
                               .values(erased_at=when))

    def rekey(self, old_id: str, new_id: str, step: Callable[[list[str]], list[str]]) -> int:
        """Re-key every pseudonym under ``old_id`` with ``step`` (HMAC under the new key), in one transaction.

        Rows already under ``new_id`` are left: a second run changes nothing.
        """
        if not self.exists():
            return 0
        with self.engine.begin() as connection:
            rows = connection.execute(sa.select(opposition).where(opposition.c.key_id == old_id)).mappings().all()
            if not rows:
                return 0
            new = step([row["pseudonym"] for row in rows])
            connection.execute(opposition.delete().where(opposition.c.key_id == old_id))
            connection.execute(opposition.insert(), [dict(row) | {"pseudonym": pseudonym, "key_id": new_id}
                                                     for row, pseudonym in zip(rows, new, strict=True)])
        return len(rows)

    @contextlib.contextmanager
    def table_lock(self, table: str, log: Callable[[str], None] = lambda _: None) -> Iterator[None]:
        """Hold ``table``'s load lock alone (PostgreSQL only): two loads of one table never overlap.

        A load checks the file's record and the table's keys, then publishes and records; two
        loads of the same table side by side (the scheduler and a hand-run load of one landed
        file) would each pass the checks before the other's commit and both publish.
        """
        with self._advisory("(:c, hashtext(:t))", {"c": TABLE_LOCK_CLASS, "t": table}, shared=False,
                            waiting=f"another load of {table} to finish", log=log):
            yield

    @contextlib.contextmanager
    def lake_lock(self, *, exclusive: bool, log: Callable[[str], None] = lambda _: None) -> Iterator[None]:
        """Hold the loads' lock: shared for a load, exclusive for an erasure (PostgreSQL only)."""
        with self._advisory("(:k)", {"k": LAKE_LOCK}, shared=not exclusive, log=log,
                            waiting="the loads under way to finish" if exclusive else "an erasure to finish"):
            yield

    @contextlib.contextmanager
    def _advisory(self, key: str, params: dict[str, object], *, shared: bool, waiting: str,
                  log: Callable[[str], None]) -> Iterator[None]:
        """Hold a session-level advisory lock on its own connection: ``key`` is its SQL arguments.

        Another catalog database (SQLite, in unit tests of one process) has no such lock.
        """
        if not self.postgres:
            yield
            return
        suffix = "_shared" if shared else ""
        with self.engine.connect() as connection:
            if not connection.execute(sa.text(f"SELECT pg_try_advisory_lock{suffix}{key}"), params).scalar_one():
                log("waiting for " + waiting)
                connection.execute(sa.text(f"SELECT pg_advisory_lock{suffix}{key}"), params)
            connection.commit()
            try:
                yield
            finally:
                connection.execute(sa.text(f"SELECT pg_advisory_unlock{suffix}{key}"), params)
                connection.commit()
