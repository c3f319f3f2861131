"""Writing one source extract chunk by chunk, under its final name only once complete."""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from santelake.synth.sources import ColumnKind, SourceTable

PARQUET_ROW_GROUP_ROWS = 131_072
"""Fixed, so that the Parquet bytes do not depend on how many rows each chunk holds."""
_ARROW_CSV_DATE_FORMAT = "%Y-%m-%d"
"""The format Arrow writes date32 values in by itself."""


class Sink(Protocol):
    path: Path
    rows: int

    def write(self, table: pa.Table) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


def open_sink(source: SourceTable, path: Path) -> Sink:
    return CsvSink(source, path) if source.format == "csv" else ParquetSink(source, path)


def _partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


class CsvSink:
    def __init__(self, source: SourceTable, path: Path) -> None:
        if source.encoding is None or source.delimiter is None or source.date_format is None:
            raise ValueError(f"{source.name}: a CSV source needs an encoding, a delimiter and a date format")
        self.path = path
        self.rows = 0
        self._source = source
        self._encoding = source.encoding
        self._utf8 = codecs.lookup(source.encoding).name == "utf-8"
        self._options = pa_csv.WriteOptions(include_header=False, delimiter=source.delimiter, quoting_style="none")
        self._file = _partial(path).open("wb")
        self._file.write((source.delimiter.join(source.column_names) + "\n").encode(source.encoding))

    def write(self, table: pa.Table) -> None:
        buffer = pa.BufferOutputStream()
        pa_csv.write_csv(self._render_dates(table), buffer, self._options)
        text = buffer.getvalue().to_pybytes()
        self._file.write(text if self._utf8 else text.decode("utf-8").encode(self._encoding))
        self.rows += table.num_rows

    def _render_dates(self, table: pa.Table) -> pa.Table:
        date_format = self._source.date_format
        if date_format == _ARROW_CSV_DATE_FORMAT:
            return table
        for column in self._source.columns:
            if column.kind is ColumnKind.DATE:
                position = table.schema.get_field_index(column.name)
                rendered = pc.strftime(table.column(position), format=date_format)
                table = table.set_column(position, column.name, rendered)
        return table

    def commit(self) -> None:
        self._file.close()
        os.replace(_partial(self.path), self.path)

    def abort(self) -> None:
        self._file.close()
        _partial(self.path).unlink(missing_ok=True)


class ParquetSink:
    def __init__(self, source: SourceTable, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._writer = pq.ParquetWriter(_partial(path), source.arrow_schema, compression="zstd")
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def write(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        while self._pending_rows >= PARQUET_ROW_GROUP_ROWS:
            self._write_row_group(PARQUET_ROW_GROUP_ROWS)

    def _write_row_group(self, rows: int) -> None:
        # One contiguous chunk per column: Arrow may split pages at chunk boundaries.
        pending = pa.concat_tables(self._pending).combine_chunks()
        self._writer.write_table(pending.slice(0, rows), row_group_size=rows)
        rest = pending.slice(rows)
        self._pending = [rest]
        self._pending_rows = rest.num_rows

    def commit(self) -> None:
        if self._pending_rows:
            self._write_row_group(self._pending_rows)
        self._writer.close()
        os.replace(_partial(self.path), self.path)

    def abort(self) -> None:
        self._writer.close()
        _partial(self.path).unlink(missing_ok=True)
