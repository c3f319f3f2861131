"""Airflow DAG: erases the persons of the opposition register, as `santelake erase` does.

Triggered by hand (or by an operator's tooling) with, optionally, ``{"pseudonyms": [...]}``
in the run's configuration: pseudonyms only, since a run's configuration is kept in
Airflow's database and a NIR must never be. Without it, every registered person is erased
again (an interrupted erasure finishes). The task fails unless the proof finds no one.
"""

import pendulum
from airflow.sdk import dag, get_current_context, task


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, max_active_runs=1,
     is_paused_upon_creation=False, tags=["santelake", "erasure"])
def erasure() -> None:
    @task
    def erase_registered() -> dict[str, object]:
        from santelake.erasure.dag import erase_from_conf

        return erase_from_conf(get_current_context()["dag_run"].conf or {})

    erase_registered()


erasure()
