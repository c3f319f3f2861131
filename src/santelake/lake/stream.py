"""Read a table one data file at a time, so memory holds one file's batches, never the table.

pyiceberg's ``to_arrow_batch_reader`` reads data files on a thread pool with
``executor.map``, each file materialised as a list of batches; the pool runs ahead of the
reader, so a large table ends up in memory whatever the caller does. Here each file is
read only when the one before has been consumed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa
from pyiceberg.io.pyarrow import ArrowScan


def file_by_file(table: Any, selected_fields: tuple[str, ...] = ("*",)) -> Iterator[pa.RecordBatch]:
    """The record batches of a scan of ``table``, one data file after another."""
    scan = table.scan(selected_fields=selected_fields)
    reader = ArrowScan(table.metadata, table.io, scan.projection(), scan.row_filter, scan.case_sensitive)
    for task in scan.plan_files():
        yield from reader.to_record_batches([task])


def grouped(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """``batches`` gathered into tables of ``rows`` rows or a little more (the last: what is left)."""
    group: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        group.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield pa.Table.from_batches(group)
            group, count = [], 0
    if group:
        yield pa.Table.from_batches(group)
