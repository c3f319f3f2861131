"""One catalog: what pyiceberg writes Trino reads exactly, and the reverse."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa


def test_100k_rows_written_by_pyiceberg_are_counted_exactly_by_trino(
    catalog: Any, scratch_namespace: str, sql: Any
) -> None:
    rows = 100_003
    rng = np.random.default_rng(11)
    data = pa.table({
        "id": pa.array(np.arange(rows, dtype=np.int64)),
        "amount": pa.array(rng.integers(0, 1000, rows).astype(np.int64)),
    })
    table = catalog.create_table((scratch_namespace, "counted"), schema=data.schema)
    table.append(data.slice(0, 60_000))
    table.append(data.slice(60_000))
    result = sql("dana", f"SELECT count(*), sum(amount), count(DISTINCT id) FROM iceberg.{scratch_namespace}.counted")
    assert result == [(rows, int(data["amount"].to_numpy().sum()), rows)]


def test_table_made_by_trino_ctas_is_read_back_by_pyiceberg(catalog: Any, scratch_namespace: str, sql: Any) -> None:
    sql("dana", f"CREATE TABLE iceberg.{scratch_namespace}.made_by_trino AS "
                "SELECT n AS id, 'stay-' || CAST(n AS varchar) AS label FROM UNNEST(sequence(1, 5000)) AS t(n)")
    table = catalog.load_table((scratch_namespace, "made_by_trino")).scan().to_arrow()
    assert table.num_rows == 5000
    assert sorted(table["id"].to_pylist()) == list(range(1, 5001))
    assert "stay-4242" in set(table["label"].to_pylist())


def test_file_by_file_reads_every_row_of_every_data_file(catalog: Any, scratch_namespace: str) -> None:
    from santelake.lake.stream import file_by_file

    data = pa.table({"id": pa.array(np.arange(9_000, dtype=np.int64)), "label": [f"r{i}" for i in range(9_000)]})
    table = catalog.create_table((scratch_namespace, "streamed"), schema=data.schema)
    for start in range(0, 9_000, 3_000):
        table.append(data.slice(start, 3_000))
    table = catalog.load_table((scratch_namespace, "streamed"))
    assert len(list(table.scan().plan_files())) == 3
    ids = [i for batch in file_by_file(table, ("id",)) for i in batch.column("id").to_pylist()]
    assert sorted(ids) == list(range(9_000))
    assert all(batch.schema.names == ["id"] for batch in file_by_file(table, ("id",)))
