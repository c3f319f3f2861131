"""Airflow DAG: applies the policies every day, so an ended project loses access that day."""

import pendulum
from airflow.sdk import dag, task


@dag(schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, max_active_runs=1,
     is_paused_upon_creation=False, tags=["santelake", "policy"])
def policy_apply() -> None:
    @task
    def apply_policies() -> list[str]:
        from santelake.access.enforce import apply_today
        from santelake.settings import PlatformSettings

        return apply_today(PlatformSettings.from_environment())

    apply_policies()


policy_apply()
