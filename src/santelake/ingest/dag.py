"""The shape of every ingestion DAG: discover the landed files, load each one.

Kept free of heavy imports: the DAG processor imports this for every DAG file, and the
tasks import the package only when they run.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, task


def ingest_dag(source: str) -> Any:
    @dag(
        dag_id=f"ingest_{source}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        tags=["santelake", "ingestion"],
        doc_md=f"Loads landed `{source}` files into `snds.{source}`: check, pseudonymise, publish once.",
    )
    def ingest() -> None:
        @task
        def discover() -> list[str]:
            from santelake.ingest.tasks import discover as find

            return find(source)

        # One file at a time: two commits on one table would race.
        @task(max_active_tis_per_dag=1, retries=2)
        def load(path: str) -> dict[str, object]:
            from santelake.ingest.tasks import load_one

            return load_one(source, path)

        load.expand(path=discover())

    return ingest()
