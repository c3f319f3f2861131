"""Extracts generated once per session, and a reader that parses them from TABLES alone."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from santelake.synth import TABLES, ColumnKind, SourceTable, SynthReport, synthesize

SCALE = 2_500
SEED = 7


@pytest.fixture(scope="session")
def report(tmp_path_factory: pytest.TempPathFactory) -> SynthReport:
    return synthesize(tmp_path_factory.mktemp("extracts"), scale=SCALE, seed=SEED)


@pytest.fixture(scope="session")
def extracts(report: SynthReport) -> dict[str, pa.Table]:
    return {name: read_extract(report.out_dir, source) for name, source in TABLES.items()}


def read_extract(out_dir: Path, source: SourceTable) -> pa.Table:
    """Parse one extract the way an ingestion reader would, from its SourceTable only."""
    path = out_dir / source.file_name
    if source.format == "parquet":
        return pq.read_table(path)
    assert source.encoding and source.delimiter and source.date_format
    # Arrow parses a custom date format only into timestamps; dates are cast afterwards.
    text_types = {
        ColumnKind.STRING: pa.string(),
        ColumnKind.DATE: pa.timestamp("s"),
        ColumnKind.INTEGER: pa.int32(),
        ColumnKind.AMOUNT: pa.decimal128(9, 2),
    }
    table = pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(encoding=source.encoding),
        parse_options=pa_csv.ParseOptions(delimiter=source.delimiter, quote_char=False),
        convert_options=pa_csv.ConvertOptions(
            column_types={column.name: text_types[column.kind] for column in source.columns},
            timestamp_parsers=[source.date_format],
        ),
    )
    return table.cast(source.arrow_schema)
