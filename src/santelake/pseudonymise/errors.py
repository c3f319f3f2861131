"""Errors about the values being transformed on their way to the lake."""

from __future__ import annotations

from collections.abc import Sequence

from santelake.errors import SantelakeError

# Enough row numbers to find the problem without flooding a log.
_ROWS_SHOWN = 10


class InvalidValuesError(SantelakeError):
    """Some values of a batch cannot be transformed; ``rows`` are their 0-based indices in the batch.

    The message names rows and the reason, never the values: they may identify a person.
    """

    def __init__(self, what: str, rows: Sequence[int], reason: str) -> None:
        self.what = what
        self.rows = tuple(rows)
        self.reason = reason
        shown = ", ".join(str(row) for row in self.rows[:_ROWS_SHOWN])
        more = f" and {len(self.rows) - _ROWS_SHOWN} more" if len(self.rows) > _ROWS_SHOWN else ""
        super().__init__(f"{what}: {len(self.rows)} invalid value(s) at row(s) {shown}{more}: {reason}")
