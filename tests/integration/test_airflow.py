"""Airflow parses every DAG without error and runs each one with dag.test() against the stack."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from santelake.runtime.layout import Layout
from santelake.runtime.services.airflow import Airflow

RUN = textwrap.dedent("""
    import json, sys
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag()
    if bag.import_errors:
        print(json.dumps({"import_errors": {k: str(v) for k, v in bag.import_errors.items()}}))
        sys.exit(1)
    runs = {}
    for dag_id in sys.argv[1:]:
        run = bag.get_dag(dag_id).test()
        runs[dag_id] = {"state": str(run.state),
                        "tasks": sorted({(t.task_id, str(t.state)) for t in run.get_task_instances()})}
    print(json.dumps({"dags": sorted(bag.dag_ids), "runs": runs}))
""")


def _airflow(layout: Layout, *dag_ids: str) -> tuple[dict[str, object], str]:
    """What the run printed last (its outcome), and the tail of its log for a failure's message."""
    result = subprocess.run([sys.executable, "-c", RUN, *dag_ids], env=Airflow(layout).process_env(),
                            capture_output=True, text=True, timeout=900, check=False)
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    log = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, f"{last}\n{log}"
    return dict(json.loads(last)), log


def test_every_dag_imports_and_each_ingestion_dag_runs_with_dag_test(layout: Layout) -> None:
    dag_ids = ["ingest", "policy_apply"]
    outcome, log = _airflow(layout, *dag_ids)
    assert set(dag_ids) <= set(outcome["dags"])  # type: ignore[arg-type]
    runs: dict[str, dict[str, object]] = outcome["runs"]  # type: ignore[assignment]
    for dag_id in dag_ids:
        assert runs[dag_id]["state"] == "success", (dag_id, runs[dag_id], log)
        states = {state for _, state in runs[dag_id]["tasks"]}  # type: ignore[attr-defined]
        assert states == {"success"}, (dag_id, runs[dag_id], log)
