"""Events lost before they reached the trail: found from Trino's query numbers and event pairs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from santelake.audit.chain import GENESIS, Record, seal
from santelake.audit.gaps import COMPLETED, CREATED, GapFinder

T0 = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)


def events(*items: tuple[str, str, int]) -> list[Record]:
    records, prev = [], GENESIS
    for seq, (kind, query_id, minutes) in enumerate(items, 1):
        record = seal(prev, seq, T0 + dt.timedelta(minutes=minutes), kind, "alice", query_id, {})
        records.append(record)
        prev = record.hash
    return records


def qid(n: int, coordinator: str = "abcde", day: str = "20261202") -> str:
    return f"{day}_080000_{n:05d}_{coordinator}"


def both(n: int, minutes: int = 0, **kw: str) -> list[tuple[str, str, int]]:
    return [(CREATED, qid(n, **kw), minutes), (COMPLETED, qid(n, **kw), minutes)]


def gaps(records: list[Record]) -> list[str]:
    finder = GapFinder()
    assert list(finder.watch(records)) == records
    return [str(g) for g in finder.gaps()]


def test_consecutive_queries_with_both_events_leave_no_gap() -> None:
    assert gaps(events(*both(0), *both(1), *both(2), *both(0, coordinator="zzzzz"))) == []


def test_missing_query_numbers_are_reported_as_a_run() -> None:
    found = gaps(events(*both(3), *both(7), *both(8), *both(10)))
    assert found == ["queries 20261202_*_00004 to 00006_abcde: no event recorded (3 query numbers missing)",
                     "queries 20261202_*_00009_abcde: no event recorded (1 query number missing)"]


def test_numbering_is_per_day_and_per_coordinator_start() -> None:
    assert gaps(events(*both(5), *both(0, coordinator="fghij"), *both(0, day="20261203"))) == []


def test_a_lost_half_of_a_pair_is_reported() -> None:
    records = events((COMPLETED, qid(0), 0), (CREATED, qid(1), 0), *both(2, minutes=120))
    assert gaps(records) == [f"query {qid(0)}: completed, but its creation was never recorded",
                             f"query {qid(1)}: created, but its completion was never recorded"]


def test_a_query_still_running_is_not_a_gap() -> None:
    assert gaps(events((CREATED, qid(0), 0), *both(1, minutes=5))) == []


def test_a_creation_removed_by_a_retention_purge_is_not_a_gap() -> None:
    records = events(*both(0), (CREATED, qid(1), 1), *both(2, minutes=2), (COMPLETED, qid(1), 3))
    assert gaps(records[2:]) == []  # the trail as a purge left it: from record 3 on
    assert gaps([r for r in records if r.seq != 3]) == [
        f"query {qid(1)}: completed, but its creation was never recorded"]


def test_a_creation_that_arrives_after_its_completion_is_no_gap() -> None:
    # Trino retries each event on its own schedule: after an outage the completion may come first.
    assert gaps(events((COMPLETED, qid(0), 0), *both(1, minutes=1), (CREATED, qid(0), 2), *both(2, minutes=90))) == []


def test_an_event_recorded_twice_is_no_gap() -> None:
    assert gaps(events(*both(0), (COMPLETED, qid(0), 1), (CREATED, qid(0), 1), *both(1, minutes=120))) == []


def _completed(query_id: str, event: Mapping[str, object], minutes: int = 0) -> Record:
    return seal(GENESIS, 1, T0 + dt.timedelta(minutes=minutes), COMPLETED, "alice", query_id, {"event": dict(event)})


# A completed event as Trino 476 sends it for a query refused before it was created (the shape of
# QueryMonitor.queryImmediateFailureEvent: taken from a SERVER_STARTING_UP refusal on the local stack).
REFUSED = {"createTime": "2026-12-02T06:17:46.319Z", "executionStartTime": "2026-12-02T06:17:46.319Z",
           "endTime": "2026-12-02T06:17:46.319Z", "metadata": {"queryState": "FAILED"},
           "failureInfo": {"errorCode": {"name": "SERVER_STARTING_UP"}},
           "statistics": {"cpuTime": 0.0, "wallTime": 0.0, "queuedTime": 0.0}}


def test_a_query_refused_before_its_creation_sends_a_completion_only_and_is_no_gap() -> None:
    refused = _completed(qid(0), REFUSED)
    finder = GapFinder()
    finder.see(refused)
    for record in events(*both(1, minutes=120)):
        finder.see(record)
    assert [str(g) for g in finder.gaps()] == []


def test_a_query_that_ran_and_lost_its_creation_is_still_a_gap() -> None:
    ran = dict(REFUSED, endTime="2026-12-02T06:17:47.001Z",
               statistics={"cpuTime": 0.2, "wallTime": 0.7, "queuedTime": 0.0, "scheduledTime": 0.1})
    for event in (ran, dict(REFUSED, failureInfo=None), {"no": "statistics"}):
        finder = GapFinder()
        finder.see(_completed(qid(0), event))
        assert [str(g) for g in finder.gaps()] == [f"query {qid(0)}: completed, but its creation was never recorded"]
