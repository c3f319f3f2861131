"""Airflow DAG: publishes the data catalogue's public view where the chart's catalogue server reads it.

Every 15 minutes it looks at the lake's tables, policies and schemas, and rebuilds only if one
changed. On the local stack it has no target and says so: the catalogue server builds its own.
"""

import pendulum
from airflow.sdk import dag, task


@dag(schedule="*/15 * * * *", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
     max_active_runs=1, is_paused_upon_creation=False, tags=["santelake", "catalogue"])
def catalogue() -> None:
    @task
    def publish_catalogue() -> list[str]:
        from santelake.catalogue.publish import publish_from_environment

        return publish_from_environment()

    publish_catalogue()


catalogue()
