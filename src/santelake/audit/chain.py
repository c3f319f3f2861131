"""The audit trail's hash chain: how a record is hashed, and how a run of records is proven.

Each record carries the hash of the one before it (``prev_hash``) and its own ``hash``: the
SHA-256 of the previous hash and the record's canonical form. Editing a record changes its
hash; deleting or reordering records breaks the next record's link; cutting the tail is
caught by an anchor (the head's sequence number and hash, kept outside the store that holds
the records). Pure functions: the store and the anchors feed them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# The hash before the first record of a trail.
GENESIS = "0" * 64
# A record the trail writes about itself: records before ``payload["through_seq"]`` were purged
# by retention, and ``payload["last_hash"]`` was the hash of the last one purged.
PURGE_KIND = "audit.purge"


def canonical_json(value: Any) -> str:
    """One text for one value: sorted keys, no spaces, UTF-8 kept (what is hashed and stored)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def timestamp_text(when: dt.datetime) -> str:
    """A UTC timestamp to the microsecond, the precision PostgreSQL keeps."""
    if when.tzinfo is None:
        raise ValueError("audit timestamps carry a time zone")
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Record:
    seq: int
    recorded_at: dt.datetime
    kind: str
    actor: str
    subject: str
    payload: str  # canonical JSON text
    prev_hash: str
    hash: str

    def payload_value(self) -> Any:
        return json.loads(self.payload)


def record_hash(prev_hash: str, seq: int, recorded_at: dt.datetime, kind: str, actor: str, subject: str,
                payload: str) -> str:
    body = canonical_json({"seq": seq, "recorded_at": timestamp_text(recorded_at), "kind": kind, "actor": actor,
                           "subject": subject, "payload": payload})
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def seal(prev_hash: str, seq: int, recorded_at: dt.datetime, kind: str, actor: str, subject: str,
         payload: Any) -> Record:
    """The record that follows ``prev_hash`` at ``seq``."""
    text = canonical_json(payload)
    return Record(seq, recorded_at, kind, actor, subject, text, prev_hash,
                  record_hash(prev_hash, seq, recorded_at, kind, actor, subject, text))


@dataclass(frozen=True)
class Anchor:
    """The chain's head as it was at ``taken_at``, kept outside the records' store."""

    seq: int
    hash: str
    taken_at: dt.datetime

    def to_json(self) -> str:
        return canonical_json({"seq": self.seq, "hash": self.hash, "taken_at": timestamp_text(self.taken_at)})

    @classmethod
    def from_json(cls, text: str) -> Anchor:
        data = json.loads(text)
        taken = dt.datetime.strptime(data["taken_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
        return cls(int(data["seq"]), str(data["hash"]), taken)


@dataclass(frozen=True)
class Problem:
    """Where the chain stops being provable, and why. ``seq`` names the first bad record."""

    seq: int
    what: str

    def __str__(self) -> str:
        return f"record {self.seq}: {self.what}"


@dataclass
class Verdict:
    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head_hash: str = GENESIS
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(records: Iterable[Record], anchors: Iterable[Anchor] = ()) -> Verdict:
    """Prove ``records`` (in ascending ``seq`` as stored) form one unbroken chain that reaches every anchor.

    The first record must follow the genesis hash, or a retention purge record later in the chain
    must vouch for what was purged before it. Stops at the first break: what follows a break
    cannot be proven. Memory is flat in the trail's length.
    """
    verdict = Verdict()
    problems = verdict.problems
    by_seq = {a.seq: a for a in anchors}
    expected_seq: int | None = None
    prev_hash = GENESIS
    unvouched: tuple[int, str] | None = None  # (first seq kept, hash before it), until a purge vouches
    for record in records:
        if expected_seq is None:
            verdict.first_seq = record.seq
            if record.seq != 1:
                unvouched = (record.seq, record.prev_hash)
                prev_hash = record.prev_hash
            expected_seq = record.seq
        if record.seq > expected_seq:
            problems.append(Problem(expected_seq, f"missing, with every record up to {record.seq - 1} (deleted)"))
            break
        if record.seq < expected_seq:
            problems.append(Problem(record.seq, f"appears again after record {expected_seq - 1} (reordered or "
                                                f"duplicated)"))
            break
        if record.prev_hash != prev_hash:
            problems.append(Problem(record.seq, "does not link to the record before it (reordered, replaced, or "
                                                "the first records were removed)"))
            break
        if record_hash(record.prev_hash, record.seq, record.recorded_at, record.kind, record.actor, record.subject,
                       record.payload) != record.hash:
            problems.append(Problem(record.seq, "its content does not match its hash (edited)"))
            break
        if record.kind == PURGE_KIND and unvouched is not None:
            vouched = record.payload_value()
            if (int(vouched.get("through_seq", -1)) + 1, vouched.get("last_hash")) == unvouched:
                unvouched = None
        anchor = by_seq.get(record.seq)
        if anchor is not None and anchor.hash != record.hash:
            problems.append(Problem(record.seq, f"differs from its anchor of {timestamp_text(anchor.taken_at)} (the "
                                                f"chain was rewritten from here on)"))
            break
        verdict.records += 1
        verdict.last_seq = record.seq
        verdict.head_hash = record.hash
        prev_hash = record.hash
        expected_seq = record.seq + 1
    if problems:
        return verdict
    if unvouched is not None:
        problems.append(Problem(unvouched[0], "the records before it are gone, and no retention purge vouches for "
                                              "their removal (deleted)"))
        return verdict
    last = verdict.last_seq or 0
    beyond = sorted((a for a in by_seq.values() if a.seq > last), key=lambda a: a.seq)
    if beyond:
        problems.append(Problem(last + 1, f"missing, though record {beyond[-1].seq} was anchored at "
                                          f"{timestamp_text(beyond[-1].taken_at)}: the trail's tail was cut"))
    return verdict
