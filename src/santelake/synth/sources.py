"""The layout of each synthetic source extract: file, format, encoding, delimiter, dates, columns.

This is the contract between the generator and the ingestion reader: the generator writes
exactly what is described here and the reader parses it from the same description. CSV
files have one header row holding the column names, no quoting, and ``\\n`` line ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import pyarrow as pa


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


_S = ColumnKind.STRING
_D = ColumnKind.DATE
_I = ColumnKind.INTEGER
_A = ColumnKind.AMOUNT


def _columns(*specs: tuple[str, ColumnKind] | tuple[str, ColumnKind, bool]) -> tuple[SourceColumn, ...]:
    return tuple(SourceColumn(*spec) for spec in specs)


BENEFICIARIES = SourceTable(
    name="beneficiaries",
    file_name="beneficiaries.csv",
    format="csv",
    encoding="latin-1",
    delimiter=";",
    date_format="%d%m%Y",
    columns=_columns(
        ("BEN_NIR", _S),
        ("BEN_NOM", _S),
        ("BEN_PRENOM", _S),
        ("BEN_NAI_DTE", _D),
        ("BEN_SEX_COD", _I),
        ("BEN_CP", _S),
        ("BEN_RNG_GEM", _I),
        ("BEN_DCD_DTE", _D, True),
    ),
)

OUTPATIENT_CLAIMS = SourceTable(
    name="outpatient_claims",
    file_name="outpatient_claims.csv",
    format="csv",
    encoding="utf-8",
    delimiter=";",
    date_format="%Y-%m-%d",
    columns=_columns(
        ("FLX_ID", _S),
        ("BEN_NIR", _S),
        ("EXE_SOI_DTD", _D),
        ("PRS_NAT_REF", _I),
        ("PSP_SPE_COD", _I),
        ("PSE_SPE_COD", _I),
        ("PRS_PAI_MNT", _A),
        ("PRS_REM_MNT", _A),
    ),
)

PHARMACY_DISPENSATIONS = SourceTable(
    name="pharmacy_dispensations",
    file_name="pharmacy_dispensations.parquet",
    format="parquet",
    encoding=None,
    delimiter=None,
    date_format=None,
    columns=_columns(
        ("DSP_ID", _S),
        ("BEN_NIR", _S),
        ("EXE_SOI_DTD", _D),
        ("PHA_CIP_C13", _S),
        ("PHA_ATC_CLA", _S),
        ("PHA_ACT_QSN", _I),
    ),
)

HOSPITAL_STAYS = SourceTable(
    name="hospital_stays",
    file_name="hospital_stays.csv",
    format="csv",
    encoding="latin-1",
    delimiter=";",
    date_format="%d%m%Y",
    columns=_columns(
        ("RSA_NUM", _S),
        ("NIR_ANO", _S),
        ("ETA_NUM", _S),
        ("ENT_DAT", _D),
        ("SOR_DAT", _D),
        ("DGN_PAL", _S),
        ("DGN_ASS", _S),
        ("GRG_GHM", _S),
    ),
)

GP_CONSULTATIONS = SourceTable(
    name="gp_consultations",
    file_name="gp_consultations.parquet",
    format="parquet",
    encoding=None,
    delimiter=None,
    date_format=None,
    columns=_columns(
        ("CNS_ID", _S),
        ("BEN_NIR", _S),
        ("CNS_DTE", _D),
        ("GP_RPPS", _S),
        ("CNS_TYP", _S),
    ),
)

TABLES: Mapping[str, SourceTable] = {
    table.name: table
    for table in (BENEFICIARIES, OUTPATIENT_CLAIMS, PHARMACY_DISPENSATIONS, HOSPITAL_STAYS, GP_CONSULTATIONS)
}
"""Every source extract by table name, in generation order."""
