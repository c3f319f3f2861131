"""Chunks written as data files, published by one snapshot, on a real (SQLite + local files) catalog."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from santelake.lake.append import ChunkedAppend
from santelake.schema import create_table, load_table_schema, to_arrow_schema

VISITS = Path(__file__).parents[1] / "schema" / "data" / "lab" / "visits.yaml"


@pytest.fixture
def table(tmp_path: Path) -> Table:
    catalog = SqlCatalog("santelake", uri=f"sqlite:///{tmp_path / 'catalog.db'}",
                         warehouse=f"file://{tmp_path / 'warehouse'}")
    return create_table(catalog, load_table_schema(VISITS))


def _visits(table: Table, first: int, count: int) -> pa.Table:
    rows = [{"person_id": f"p{i % 7}", "visit_date": dt.date(2020 + i % 3, 1, 1 + i % 28), "visit_count": i,
             "amount": Decimal("1.50"), "weight": None, "total": None, "birth_month": None}
            for i in range(first, first + count)]
    schema = to_arrow_schema(load_table_schema(VISITS))
    return pa.Table.from_pylist(rows, schema=schema)


def test_chunks_are_invisible_until_one_snapshot_publishes_them_all(table: Table) -> None:
    append = ChunkedAppend(table)
    for first in (0, 100, 200):
        append.write(_visits(table, first, 100))

    assert table.refresh().current_snapshot() is None, "nothing visible before the commit"
    append.commit({"santelake.source-sha256": "abc"})

    live = table.refresh()
    assert len(live.metadata.snapshots) == 1
    snapshot = live.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary.additional_properties["santelake.source-sha256"] == "abc"
    assert sorted(live.scan().to_arrow()["visit_count"].to_pylist()) == list(range(300))
    # File names stay unique across chunks: every file of every chunk is there.
    assert len({task.file.file_path for task in live.scan().plan_files()}) == len(append.data_files)


def test_a_file_with_no_row_to_publish_still_leaves_its_snapshot(table: Table) -> None:
    append = ChunkedAppend(table)
    append.write(_visits(table, 0, 0))

    append.commit({"santelake.source-sha256": "empty"})

    snapshot = table.refresh().current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary.additional_properties["santelake.source-sha256"] == "empty"
    assert table.scan().to_arrow().num_rows == 0


def test_a_partitions_rows_of_several_chunks_share_one_file_up_to_its_row_limit(table: Table) -> None:
    append = ChunkedAppend(table, file_rows=250)
    for first in (0, 300, 600):
        append.write(_visits(table, first, 300))  # 100 rows a year (three years) a chunk
    append.commit({"santelake.source-sha256": "abc"})

    tasks = list(table.refresh().scan().plan_files())
    # Per year: the first two chunks' 200 rows in one file; the third's 100 would pass 250, so a new file.
    assert sorted(task.file.record_count for task in tasks) == [100, 100, 100, 200, 200, 200]
    assert sorted({str(task.file.partition[0]) for task in tasks}) == ["50", "51", "52"]  # years since 1970
    assert sorted(table.scan().to_arrow()["visit_count"].to_pylist()) == list(range(900))


def test_the_files_listed_are_whole_and_later_chunks_go_to_new_files(table: Table) -> None:
    import pyarrow.parquet as pq

    append = ChunkedAppend(table)
    append.write(_visits(table, 0, 90))
    listed = list(append.data_files)
    for data_file in listed:  # each readable now: its footer written, its count the rows it holds
        with table.io.new_input(data_file.file_path).open() as stream:
            assert pq.ParquetFile(stream).metadata.num_rows == data_file.record_count == 30
    append.write(_visits(table, 90, 90))
    append.commit({"santelake.source-sha256": "abc"})

    assert len(append.data_files) == 6 and {f.file_path for f in listed} < {f.file_path for f in append.data_files}
    assert sorted(table.refresh().scan().to_arrow()["visit_count"].to_pylist()) == list(range(180))
