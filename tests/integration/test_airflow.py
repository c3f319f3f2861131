"""Airflow parses the DAGs and runs one against the stack with dag.test()."""

from __future__ import annotations

import os
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
    run = bag.get_dag(sys.argv[1]).test()
    ti = {t.task_id: (t.state, t.xcom_pull(task_ids=t.task_id)) for t in run.get_task_instances()}
    print(json.dumps({"dags": sorted(bag.dag_ids), "state": str(run.state), "tasks": ti}, default=str))
""")


def _run_dag(layout: Layout, dag_id: str) -> dict[str, object]:
    import json

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")} | Airflow(layout).environment()
    result = subprocess.run([sys.executable, "-c", RUN, dag_id], env=env, capture_output=True, text=True,
                            timeout=600, check=False)
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, f"{last}\n{result.stderr[-3000:]}"
    return dict(json.loads(last))


def test_smoke_dag_runs_against_the_stack(layout: Layout) -> None:
    outcome = _run_dag(layout, "santelake_smoke")
    assert "santelake_smoke" in outcome["dags"]  # type: ignore[operator]
    assert outcome["state"] == "success", outcome
    state, rows = outcome["tasks"]["count_demo_rows"]  # type: ignore[index]
    assert state == "success"
    assert rows == 20_000
