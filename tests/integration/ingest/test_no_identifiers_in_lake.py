"""Scan every data file in the warehouse: no raw NIR, no name, no full birth date reached it."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from santelake import demo
from santelake.names import WAREHOUSE_BUCKET
from santelake.runtime.layout import Layout
from santelake.runtime.services.minio import Minio
from santelake.synth import synthesize


def test_no_data_file_holds_a_raw_identifier(layout: Layout, tmp_path: Path) -> None:
    # The demo's extracts are deleted from the landing bucket once loaded: made again, the same (seeded).
    report = synthesize(tmp_path, scale=demo.DEMO_SCALE, seed=demo.DEMO_SEED)
    extract = next(item.path for item in report.files if item.table == "beneficiaries")
    raw = pacsv.read_csv(extract, read_options=pacsv.ReadOptions(encoding="latin-1"),
                         parse_options=pacsv.ParseOptions(delimiter=";"),
                         convert_options=pacsv.ConvertOptions(column_types={
                             "BEN_NIR": pa.string(), "BEN_NAI_DTE": pa.string()}))
    nirs = set(raw["BEN_NIR"].to_pylist())
    forbidden = nirs | {n[:13] for n in nirs} | set(raw["BEN_NOM"].to_pylist()) | set(raw["BEN_PRENOM"].to_pylist())
    birth_dates = {dt.datetime.strptime(d, "%d%m%Y").date() for d in raw["BEN_NAI_DTE"].to_pylist()}
    exact_birth_dates = {d for d in birth_dates if d.day != 1}

    client = Minio(layout).client()
    scanned = 0
    for obj in client.list_objects(WAREHOUSE_BUCKET, recursive=True):
        if not obj.object_name.endswith(".parquet"):
            continue
        response = client.get_object(WAREHOUSE_BUCKET, obj.object_name)
        try:
            table = pq.read_table(io.BytesIO(response.read()))
        finally:
            response.close()
            response.release_conn()
        scanned += 1
        for name, column in zip(table.column_names, table.columns, strict=True):
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                leaked = forbidden & set(column.to_pylist())
                assert not leaked, f"{obj.object_name}: column {name} holds raw identifiers, e.g. {sorted(leaked)[:1]}"
            if pa.types.is_date(column.type) and "beneficiaries" in obj.object_name:
                assert not (exact_birth_dates & set(column.to_pylist())), f"{obj.object_name}: {name} has full dates"
    assert scanned > 0
