"""A trivial lake read, used by the smoke DAG to prove Airflow reaches the catalog and storage."""

from __future__ import annotations

from santelake.config import load_settings
from santelake.demo import DEMO_NAMESPACE, DEMO_TABLE
from santelake.lake.catalog import open_catalog
from santelake.runtime.layout import Layout


def count_demo_rows() -> int:
    layout = Layout(load_settings())
    table = open_catalog(layout).load_table((DEMO_NAMESPACE, DEMO_TABLE))
    return int(table.scan().to_arrow().num_rows)
