"""What the policy files declare, as typed values.

``loader`` builds these from ``policies/``; ``lint`` checks them against the table schemas;
``compile`` turns them into Trino rules, a group file and Keycloak groups. Each value keeps
the file and key it came from, so every later fault can point back at the policy text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from santelake.schema import Sensitivity

# From least to most revealing; a ceiling admits its class and every class before it.
SENSITIVITY_ORDER = (
    Sensitivity.NON_SENSITIVE,
    Sensitivity.QUASI_IDENTIFIER,
    Sensitivity.SENSITIVE,
    Sensitivity.DIRECT_IDENTIFIER,
)


def within(sensitivity: Sensitivity, ceiling: Sensitivity) -> bool:
    return SENSITIVITY_ORDER.index(sensitivity) <= SENSITIVITY_ORDER.index(ceiling)


class StaffRole(StrEnum):
    """Staff roles; what each may do is fixed in ``santelake.policy.compile`` and docs/compliance.md."""

    DATA_ENGINEER = "data_engineer"
    COMPLIANCE_OFFICER = "compliance_officer"
    PLATFORM_ADMIN = "platform_admin"


class MaskKind(StrEnum):
    YEAR = "year"
    MONTH = "month"
    PREFIX = "prefix"
    PROJECT_PSEUDONYM = "project_pseudonym"


@dataclass(frozen=True)
class Origin:
    """Where a policy value is written: file, key path and line, for faults and explanations."""

    path: Path
    key: str
    line: int
    column: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Person:
    username: str
    name: str
    organisation: str
    origin: Origin


@dataclass(frozen=True)
class Mask:
    column: str
    kind: MaskKind
    origin: Origin
    length: int = 0  # for PREFIX

    def describe(self) -> str:
        return f"first {self.length} characters" if self.kind is MaskKind.PREFIX else self.kind.value.replace("_", " ")


@dataclass(frozen=True)
class RowFilter:
    """Rows whose ``column`` is one of ``values`` (``in``) or within ``low..high`` (``between``)."""

    column: str
    origin: Origin  # the `in` or `between` key
    column_origin: Origin
    values: tuple[str | int | dt.date, ...] = ()
    low: str | int | dt.date | None = None
    high: str | int | dt.date | None = None

    def describe(self) -> str:
        if self.values:
            return f"{self.column} in ({', '.join(str(v) for v in self.values)})"
        return f"{self.column} between {self.low} and {self.high}"


@dataclass(frozen=True)
class Dataset:
    """One table granted to a project: which columns (by name or class), masks, rows."""

    namespace: str
    table: str
    columns: tuple[str, ...]
    sensitivities: tuple[Sensitivity, ...]
    masks: tuple[Mask, ...]
    rows: tuple[RowFilter, ...]
    origin: Origin
    column_origins: tuple[Origin, ...] = ()

    @property
    def full_name(self) -> str:
        return f"{self.namespace}.{self.table}"

    def mask(self, column: str) -> Mask | None:
        return next((m for m in self.masks if m.column == column), None)


@dataclass(frozen=True)
class LegalBasis:
    """A CNIL reference methodology (``MR-004``) or an authorisation number; exactly one is set."""

    reference_methodology: str | None
    authorisation: str | None
    origin: Origin

    def __str__(self) -> str:
        return self.reference_methodology or f"authorisation {self.authorisation}"


@dataclass(frozen=True)
class Project:
    id: str
    title: str
    purpose: str
    legal_basis: LegalBasis
    responsible: str
    responsible_origin: Origin
    members: tuple[str, ...]
    start: dt.date
    end: dt.date
    datasets: tuple[Dataset, ...]
    origin: Origin
    member_origins: tuple[Origin, ...]

    @property
    def group(self) -> str:
        return f"project_{self.id}"

    def active_on(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class StaffOnly:
    schema: str
    roles: tuple[StaffRole, ...]
    reason: str
    origin: Origin
    # The Trino catalog the schema is in, when not the lake's (the audit trail has a catalog of its own).
    catalog: str | None = None


@dataclass(frozen=True)
class SharedTable:
    namespace: str
    table: str
    reason: str
    origin: Origin

    @property
    def full_name(self) -> str:
        return f"{self.namespace}.{self.table}"


@dataclass(frozen=True)
class Platform:
    catalog: str
    research_ceiling: Sensitivity
    direct_identifier_mask: MaskKind
    methodology_ceilings: dict[str, Sensitivity]
    authorisation_ceiling: Sensitivity
    staff_only: tuple[StaffOnly, ...]
    shared_tables: tuple[SharedTable, ...]
    origin: Origin


@dataclass(frozen=True)
class PolicySet:
    """Everything in ``policies/``: the input of lint, compile, explain and report."""

    root: Path
    platform: Platform
    people: tuple[Person, ...]
    staff: dict[StaffRole, tuple[str, ...]]
    staff_origins: dict[StaffRole, tuple[Origin, ...]]
    projects: tuple[Project, ...]

    def person(self, username: str) -> Person | None:
        return next((p for p in self.people if p.username == username), None)

    def roles_of(self, username: str) -> tuple[StaffRole, ...]:
        return tuple(role for role in StaffRole if username in self.staff.get(role, ()))

    def active_projects(self, day: dt.date) -> tuple[Project, ...]:
        return tuple(p for p in self.projects if p.active_on(day))
