"""Faults found in policy files, each pointing at the file, line and key to fix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from santelake.errors import SantelakeError


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class FaultKind(StrEnum):
    """What kind of fault: the lint report and the tests name faults by kind."""

    SYNTAX = "syntax"
    SCHEMA = "schema"
    UNKNOWN_TABLE = "unknown-table"
    UNKNOWN_COLUMN = "unknown-column"
    UNKNOWN_PERSON = "unknown-person"
    DIRECT_IDENTIFIER = "direct-identifier"
    LEGAL_BASIS = "legal-basis"
    DATES = "dates"
    CONFLICT = "conflict"
    SHADOWED = "shadowed"
    CEILING = "ceiling"
    STAFF_ONLY = "staff-only"
    MASK = "mask"
    ROW_FILTER = "row-filter"


@dataclass(frozen=True, order=True)
class Fault:
    path: Path
    line: int
    column: int
    kind: FaultKind
    key: str
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}" if self.line else str(self.path)
        key = f" {self.key}:" if self.key else ""
        return f"{where}: {self.severity} [{self.kind}]{key} {self.message}"


class PolicyError(SantelakeError):
    """Policies that cannot be compiled: lists every error, nothing is written."""

    def __init__(self, faults: Sequence[Fault]) -> None:
        self.faults = tuple(faults)
        listed = "\n".join(f"  {fault}" for fault in self.faults)
        super().__init__(f"{len(self.faults)} error(s) in the policies; nothing was written:\n{listed}")
