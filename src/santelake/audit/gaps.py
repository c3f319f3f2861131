"""Queries the trail should hold and does not: what Trino could not deliver, found from the events that did arrive.

A proven chain says nothing was removed after it was written; it cannot say that everything was
written. Two traces of a lost event remain:

- Trino numbers its queries: ids are ``<yyyyMMdd>_<HHmmss>_<n>_<coordinator>``, with ``n``
  counting up by one per query from 0 each UTC day, per coordinator start (``coordinator``
  is new at each start). A number missing between two recorded ones is a query whose
  events were both lost. (A statement abandoned before it was queued also takes a number
  and sends no event: the report says a number is missing, not that it was a query that ran.)
- Each query sends a *created* event and a *completed* one; one without the other, once the
  query is long over, is a lost event (except a creation removed by a retention purge).
  A query Trino refuses before creating it (``SERVER_STARTING_UP`` while the coordinator starts,
  a full queue, a refused identity) sends its completed event only, by design: that event says
  so (it failed, and never reached a scheduler: no ``scheduledTime``, ended as it began) and
  is no gap. It holds all a creation event would (who, when, the text).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from santelake.audit.chain import Record

CREATED = "trino.query_created"
COMPLETED = "trino.query_completed"
QUERY_ID = re.compile(r"^(?P<day>\d{8})_\d{6}_(?P<n>\d{5})_(?P<coordinator>[a-z0-9]+)$")


@dataclass(frozen=True)
class Gap:
    what: str

    def __str__(self) -> str:
        return self.what


@dataclass
class GapFinder:
    """Fed every record in order (``see``), then asked for the ``gaps``."""

    # A created event without its completion is a gap once this much older than the trail's last record.
    patience: dt.timedelta = dt.timedelta(hours=1)
    _numbers: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    _created: dict[str, dt.datetime] = field(default_factory=dict)
    # Completions whose creation has not been seen (yet: retried events may arrive in either order),
    # with whether Trino refused the query before creating it (then none is coming).
    _completed_only: dict[str, tuple[dt.datetime, bool]] = field(default_factory=dict)
    _last: dt.datetime | None = None
    # When the trail starts after a retention purge: its first record's time (a query created before
    # it and completed after it lost its creation to the purge, not to a fault).
    _purged_until: dt.datetime | None = None

    def see(self, record: Record) -> None:
        if self._last is None and record.seq != 1:
            self._purged_until = record.recorded_at
        self._last = record.recorded_at
        if record.kind not in (CREATED, COMPLETED):
            return
        match = QUERY_ID.match(record.subject)
        if match:
            numbers = self._numbers.setdefault((match["day"], match["coordinator"]), set())
            number = int(match["n"])
            paired = number in numbers and record.subject not in self._created \
                and record.subject not in self._completed_only
            numbers.add(number)
            if paired:
                return  # the query's two events were seen already: a delivery recorded twice, no gap
        if record.kind == CREATED:
            if self._completed_only.pop(record.subject, None) is None:
                self._created[record.subject] = record.recorded_at
        elif self._created.pop(record.subject, None) is None:
            self._completed_only[record.subject] = (record.recorded_at, refused_before_creation(record))

    def watch(self, records: Iterable[Record]) -> Iterator[Record]:
        for record in records:
            self.see(record)
            yield record

    def gaps(self) -> list[Gap]:
        found: list[Gap] = []
        for (day, coordinator), numbers in sorted(self._numbers.items()):
            for start, end in _missing(numbers):
                span = f"{start:05d}" if start == end else f"{start:05d} to {end:05d}"
                found.append(Gap(f"queries {day}_*_{span}_{coordinator}: no event recorded "
                                 f"({end - start + 1} query number{'s' if end > start else ''} missing)"))
        found += [Gap(f"query {q}: completed, but its creation was never recorded")
                  for q, (at, refused) in self._completed_only.items()
                  if not refused and (self._purged_until is None or at - self._purged_until > self.patience)]
        if self._last is not None:
            late = [q for q, at in self._created.items() if self._last - at > self.patience]
            found += [Gap(f"query {q}: created, but its completion was never recorded") for q in sorted(late)]
        return found


def refused_before_creation(record: Record) -> bool:
    """Whether a completed event is Trino's for a query it failed before creating it
    (``QueryMonitor.queryImmediateFailureEvent``): failed, never scheduled, ended when it began."""
    try:
        event = record.payload_value().get("event")
    except (ValueError, AttributeError):
        return False
    if not isinstance(event, dict) or not isinstance(event.get("statistics"), dict):
        return False
    return (isinstance(event.get("failureInfo"), dict) and event["statistics"].get("scheduledTime") is None
            and event.get("executionStartTime") is not None
            and event.get("executionStartTime") == event.get("endTime") == event.get("createTime"))


def _missing(numbers: set[int]) -> list[tuple[int, int]]:
    """Runs of numbers missing between the lowest and the highest seen. (Past 90,000 queries in a day
    Trino starts again from 0 under the same day; the runs are then too few, never too many.)"""
    ordered = sorted(numbers)
    return [(before + 1, after - 1) for before, after in itertools.pairwise(ordered) if after - before > 1]
