"""The ingestion DAG: every ``POLL``, load what waits in the landing bucket, then sweep it.

Kept free of heavy imports: the DAG processor imports this file, and the tasks import the
package only when they run. The list of sources is not read here: the task takes it from
the schemas when it runs, so adding a source needs no DAG.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import dag, task

DAG_ID = "ingest"
# How often the DAG looks for waiting extracts: at most this much is added to a load's time.
POLL = timedelta(seconds=30)


def ingest_dag() -> Any:
    @dag(
        dag_id=DAG_ID,
        schedule=POLL,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,  # one load at a time: two commits on one table would race
        is_paused_upon_creation=False,
        tags=["santelake", "ingestion"],
        doc_md="Loads the extracts waiting in the landing bucket (`incoming/<source>/`), in the sources' load "
               "order: check, pseudonymise, publish once. Rejected extracts move to `rejected/` with their reason.",
    )
    def ingest() -> None:
        @task(retries=2)
        def load_landed() -> list[dict[str, str]]:
            from airflow.exceptions import AirflowFailException

            from santelake.ingest.tasks import load_landed as load

            outcomes = load()
            rejected = [o["message"] for o in outcomes if o["status"] == "rejected"]
            if rejected:
                # Not retried: the extracts are in rejected/ with their reasons, for a person to read.
                raise AirflowFailException(f"{len(rejected)} extract(s) rejected:\n" + "\n".join(rejected))
            return outcomes

        @task(trigger_rule="all_done")
        def sweep_landing() -> list[str]:
            from santelake.ingest.tasks import sweep_landing as sweep

            return sweep()

        load_landed() >> sweep_landing()

    return ingest()
