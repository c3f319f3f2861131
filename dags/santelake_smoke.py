"""Smoke DAG: proves Airflow reaches the lake, by counting the demo table with pyiceberg.

Thin, as every DAG here: it only wires one task to the santelake package.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, tags=["santelake"])
def santelake_smoke() -> None:
    @task
    def count_demo_rows() -> int:
        from santelake.lake.smoke import count_demo_rows as count

        return count()

    count_demo_rows()


santelake_smoke()
