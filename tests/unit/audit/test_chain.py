"""The hash chain: what verify proves, and the first record it names when a trail was tampered with."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from santelake.audit.chain import GENESIS, PURGE_KIND, Anchor, Record, canonical_json, seal, verify

T0 = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)


def chain(n: int, start: int = 1, prev: str = GENESIS) -> list[Record]:
    records = []
    for seq in range(start, start + n):
        record = seal(prev, seq, T0 + dt.timedelta(seconds=seq), "trino.query_completed", f"user{seq % 3}",
                      f"q{seq}", {"event": {"n": seq, "text": "SELECT 'é'"}})
        records.append(record)
        prev = record.hash
    return records


def test_an_untouched_chain_is_proven_to_its_anchors() -> None:
    records = chain(10)
    verdict = verify(records, [Anchor(5, records[4].hash, T0), Anchor(10, records[9].hash, T0)])
    assert verdict.ok, verdict.problems
    assert (verdict.records, verdict.first_seq, verdict.last_seq, verdict.head_hash) == (10, 1, 10, records[9].hash)


def test_an_empty_trail_is_proven_when_nothing_was_anchored() -> None:
    assert verify([]).ok


def test_an_edited_record_is_named() -> None:
    records = chain(10)
    records[6] = dataclasses.replace(records[6], actor="someone-else")
    verdict = verify(records)
    assert not verdict.ok
    assert (verdict.problems[0].seq, "edited" in verdict.problems[0].what) == (7, True)
    assert verdict.records == 6


def test_an_edited_payload_is_named_even_when_its_json_means_the_same() -> None:
    records = chain(3)
    records[1] = dataclasses.replace(records[1], payload=records[1].payload.replace('"n":2', '"n": 2'))
    assert [p.seq for p in verify(records).problems] == [2]


def test_a_deleted_record_is_named() -> None:
    records = chain(10)
    del records[3]
    problem = (verify(records).problems)[0]
    assert problem.seq == 4 and "deleted" in problem.what


def test_reordered_records_are_named() -> None:
    records = chain(10)
    # Swapped contents under their original numbers, as an UPDATE of seq would leave them.
    a, b = records[2], records[3]
    records[2] = dataclasses.replace(b, seq=3)
    records[3] = dataclasses.replace(a, seq=4)
    assert (verify(records).problems)[0].seq == 3


def test_a_record_rehashed_after_an_edit_breaks_the_next_link() -> None:
    records = chain(5)
    forged = seal(records[1].prev_hash, 2, records[1].recorded_at, records[1].kind, "forger", records[1].subject,
                  {"event": {}})
    records[1] = forged
    problem = (verify(records).problems)[0]
    assert problem.seq == 3 and "link" in problem.what


def test_a_cut_tail_is_caught_by_its_anchor() -> None:
    records = chain(10)
    anchors = [Anchor(8, records[7].hash, T0)]
    problem = (verify(records[:6], anchors).problems)[0]
    assert problem.seq == 7 and "cut" in problem.what


def test_a_rewritten_chain_differs_from_its_anchor() -> None:
    records = chain(10)
    anchors = [Anchor(8, records[7].hash, T0)]
    # Record 2 edited, and every record after it rehashed: a self-consistent chain of its own.
    rewritten = records[:1]
    for record in records[1:]:
        actor = "forger" if record.seq == 2 else record.actor
        rewritten.append(seal(rewritten[-1].hash, record.seq, record.recorded_at, record.kind, actor,
                              record.subject, record.payload_value()))
    assert verify(rewritten).ok
    problem = (verify(rewritten, anchors).problems)[0]
    assert problem.seq == 8 and "anchor" in problem.what


def test_the_first_records_removed_without_a_purge_record_are_named() -> None:
    records = chain(10)
    problem = (verify(records[4:]).problems)[0]
    assert problem.seq == 5 and "purge" in problem.what


def test_a_retention_purge_vouches_for_the_records_it_removed() -> None:
    records = chain(10)
    purge = seal(records[-1].hash, 11, T0, PURGE_KIND, "retention", "", {"through_seq": 4,
                                                                          "last_hash": records[3].hash})
    verdict = verify([*records[4:], purge], [Anchor(2, records[1].hash, T0), Anchor(11, purge.hash, T0)])
    assert verdict.ok, verdict.problems
    assert (verdict.first_seq, verdict.records) == (5, 7)


def test_a_purge_record_vouching_for_other_records_does_not_cover_a_deletion() -> None:
    records = chain(10)
    purge = seal(records[-1].hash, 11, T0, PURGE_KIND, "retention", "", {"through_seq": 2,
                                                                          "last_hash": records[1].hash})
    problem = (verify([*records[4:], purge]).problems)[0]
    assert problem.seq == 5


def test_canonical_json_is_one_text_per_value() -> None:
    assert canonical_json({"b": 1, "a": ["é", 2.5]}) == '{"a":["é",2.5],"b":1}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_a_timestamp_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        seal(GENESIS, 1, dt.datetime(2026, 1, 1), "k", "a", "s", {})
