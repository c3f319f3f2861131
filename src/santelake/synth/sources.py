"""The layout of each synthetic source extract: file, format, encoding, delimiter, dates, columns.

Derived from the tables' schema files (``iceberg_schemas/snds``), which the ingestion reader
also reads: one description of each raw file. CSV files have one header row holding the
column names, no quoting, and ``\\n`` line ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import pyarrow as pa
from pyiceberg.types import DateType, DecimalType, IntegerType, LongType

from santelake.locations import schemas_dir
from santelake.schema import Column, SourceFormat, TableSchema, Transform, load_schemas, sources


class ColumnKind(StrEnum):
    """What a raw value holds, whatever its text or Parquet rendering."""

    STRING = "string"
    DATE = "date"
    """A calendar day: Parquet ``date32``; in CSV, text in the table's ``date_format``."""
    INTEGER = "integer"
    AMOUNT = "amount"
    """Euros with exactly two decimals: Parquet ``decimal128(9, 2)``; in CSV, ``12.50``."""


_ARROW_TYPES: Mapping[ColumnKind, pa.DataType] = {
    ColumnKind.STRING: pa.string(),
    ColumnKind.DATE: pa.date32(),
    ColumnKind.INTEGER: pa.int32(),
    ColumnKind.AMOUNT: pa.decimal128(9, 2),
}


@dataclass(frozen=True)
class SourceColumn:
    name: str
    kind: ColumnKind = ColumnKind.STRING
    nullable: bool = False
    """Whether the value may be absent: an empty CSV field, a Parquet null."""


@dataclass(frozen=True)
class SourceTable:
    name: str
    file_name: str
    format: Literal["csv", "parquet"]
    encoding: str | None
    """Text encoding of a CSV file; ``None`` for Parquet."""
    delimiter: str | None
    """Field separator of a CSV file; ``None`` for Parquet."""
    date_format: str | None
    """``strftime`` format of DATE columns in a CSV file; ``None`` for Parquet (native dates)."""
    columns: tuple[SourceColumn, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def arrow_schema(self) -> pa.Schema:
        """The in-memory (and Parquet) schema of the table before CSV rendering."""
        return pa.schema([pa.field(c.name, _ARROW_TYPES[c.kind], nullable=c.nullable) for c in self.columns])


_DATE_FORMATS = {Transform.PARSE_DATE_DDMMYYYY: "%d%m%Y", Transform.PARSE_DATE_ISO: "%Y-%m-%d"}


def _kind(column: Column) -> ColumnKind:
    """What the raw value of ``column`` holds, from its first transform and its lake type."""
    first = column.transforms[0]
    if first in _DATE_FORMATS or (first is Transform.IDENTITY and isinstance(column.type, DateType)):
        return ColumnKind.DATE
    if first is Transform.DECIMAL or isinstance(column.type, DecimalType):
        return ColumnKind.AMOUNT
    if first is Transform.IDENTITY and isinstance(column.type, IntegerType | LongType):
        return ColumnKind.INTEGER
    return ColumnKind.STRING


def from_schema(declared: TableSchema) -> SourceTable:
    """The raw file a table's schema file declares: iceberg_schemas/ is the one description of it."""
    source = declared.source
    if source is None:
        raise ValueError(f"{declared.path}: {declared.full_name} declares no source file")
    columns: dict[str, SourceColumn] = {}
    date_formats = set()
    for column in declared.lake_columns:
        if column.source is not None and column.source not in columns:
            columns[column.source] = SourceColumn(column.source, _kind(column), nullable=not column.required)
            date_formats |= {_DATE_FORMATS[t] for t in column.transforms if t in _DATE_FORMATS}
    for dropped in declared.dropped_source_columns:
        columns.setdefault(dropped.name, SourceColumn(dropped.name))
    if len(date_formats) > 1:
        raise ValueError(f"{declared.path}: one file cannot write dates as {' and '.join(sorted(date_formats))}")
    csv = source.format is SourceFormat.CSV
    return SourceTable(
        name=declared.name,
        file_name=source.file,
        format="csv" if csv else "parquet",
        encoding=source.encoding if csv else None,
        delimiter=source.delimiter if csv else None,
        date_format=(date_formats.pop() if date_formats else "%Y-%m-%d") if csv else None,
        columns=tuple(columns.values()),
    )


TABLES: Mapping[str, SourceTable] = {s.name: from_schema(s) for s in sources(load_schemas(schemas_dir()))}
"""Every source extract by table name, in load order (each table's stream is seeded by its name)."""

BENEFICIARIES = TABLES["beneficiaries"]
OUTPATIENT_CLAIMS = TABLES["outpatient_claims"]
PHARMACY_DISPENSATIONS = TABLES["pharmacy_dispensations"]
HOSPITAL_STAYS = TABLES["hospital_stays"]
GP_CONSULTATIONS = TABLES["gp_consultations"]
