"""Airflow parses every DAG without error, and its scheduler runs each one to success against the stack."""

from __future__ import annotations

from santelake.runtime.layout import Layout
from tests.integration.airflow_runs import failures, run_dags


def test_every_dag_imports_and_the_scheduler_runs_ingest_and_policy_apply(layout: Layout) -> None:
    # The catalogue DAG too: locally it has no target and says so (the stack's server builds its own).
    outcome = run_dags(layout, {"ingest": {}, "policy_apply": {}, "catalogue": {}})
    assert {"ingest", "policy_apply", "erasure", "catalogue"} <= set(outcome["dags"])
    for dag_id, run in outcome["runs"].items():
        states = {state for _, state, _ in run["tasks"]}
        assert run["state"] == "success" and states == {"success"}, (dag_id, run, failures(layout, dag_id, run))
