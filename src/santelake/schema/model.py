"""What one table file in ``iceberg_schemas/`` declares, as typed values.

The loader (``santelake.schema.loader``) builds these from YAML and checks every rule;
the rest of the platform (Iceberg tables, ingestion, access policies, the compliance
report) reads them and never the YAML itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pyiceberg.types import PrimitiveType


class Sensitivity(StrEnum):
    """How much a value says about a person; decides how it is loaded and who may see it."""

    DIRECT_IDENTIFIER = "direct_identifier"
    QUASI_IDENTIFIER = "quasi_identifier"
    SENSITIVE = "sensitive"
    NON_SENSITIVE = "non_sensitive"


class Transform(StrEnum):
    """One step from a raw value to its lake value; a column applies its steps in order."""

    IDENTITY = "identity"
    PSEUDONYMISE = "pseudonymise"
    PARSE_DATE_DDMMYYYY = "parse_date_ddmmyyyy"
    PARSE_DATE_ISO = "parse_date_iso"
    GENERALISE_MONTH = "generalise_month"
    GENERALISE_YEAR = "generalise_year"
    POSTCODE_TO_DEPARTMENT = "postcode_to_department"
    SPLIT_PIPE = "split_pipe"
    DECIMAL = "decimal"
    DROP = "drop"


class OnRepeat(StrEnum):
    """What a row arriving again under a key its table already holds means (docs/ingestion.md)."""

    KEEP_LATEST = "keep_latest"  # a reference table: the later row is the current state
    REFUSE = "refuse"  # an event table: the repeat goes to quarantine, naming the earlier file


class SourceFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"


@dataclass(frozen=True)
class SourceFile:
    """The raw file a table is loaded from; ``delimiter`` and ``encoding`` are for CSV only."""

    file: str
    format: SourceFormat
    delimiter: str | None = None
    encoding: str | None = None
    # Sources loaded before this one (their rows are checked against: a claim's person).
    load_after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Column:
    name: str
    field_id: int
    type: PrimitiveType
    required: bool
    doc: str
    sensitivity: Sensitivity
    source: str | None
    transforms: tuple[Transform, ...]
    deprecated: bool
    line: int

    @property
    def pseudonymised(self) -> bool:
        return Transform.PSEUDONYMISE in self.transforms


@dataclass(frozen=True)
class DroppedSourceColumn:
    """A raw column that is read but never written to the lake (names, for instance)."""

    name: str
    sensitivity: Sensitivity
    doc: str


@dataclass(frozen=True)
class PartitionField:
    column: str
    transform: str


@dataclass(frozen=True)
class SortField:
    column: str
    transform: str
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class TableSchema:
    """One table, as declared in ``iceberg_schemas/<namespace>/<table>.yaml``."""

    path: Path
    name: str
    namespace: str
    doc: str
    source: SourceFile | None
    columns: tuple[Column, ...]
    dropped_source_columns: tuple[DroppedSourceColumn, ...]
    partition_by: tuple[PartitionField, ...]
    sort_by: tuple[SortField, ...]
    identifier_fields: tuple[str, ...]
    # Loaded tables with identifier fields only; None elsewhere.
    on_repeat: OnRepeat | None = None

    @property
    def identifier(self) -> tuple[str, str]:
        """The catalog identifier, ``(namespace, table)``."""
        return (self.namespace, self.name)

    @property
    def full_name(self) -> str:
        return f"{self.namespace}.{self.name}"

    @property
    def lake_columns(self) -> tuple[Column, ...]:
        """The columns the table holds now: every declared column but the deprecated ones."""
        return tuple(column for column in self.columns if not column.deprecated)

    @property
    def person_columns(self) -> tuple[Column, ...]:
        """The columns naming a person: the direct identifiers, each held as a pseudonym.

        What an erasure deletes by and an opposition drops by, found from the declarations.
        """
        return tuple(c for c in self.lake_columns if c.sensitivity is Sensitivity.DIRECT_IDENTIFIER)

    @property
    def raw_columns(self) -> tuple[str, ...]:
        """Every raw column the source file must have, each once, in declaration order."""
        names = [c.source for c in self.lake_columns if c.source is not None]
        names += [dropped.name for dropped in self.dropped_source_columns]
        return tuple(dict.fromkeys(names))

    def column(self, name: str) -> Column:
        for column in self.lake_columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.path}: table {self.full_name} has no column {name!r}")
