"""Run DAGs through the running scheduler, as an operator's trigger would, and wait for their end.

``dag.test()`` is not used: it runs a task in the test's process while the stack's scheduler,
sharing the metadatabase, may pick the same task up too, and the two then disagree on its
state (CI saw a task whose code returned marked failed).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

from santelake.runtime import stack
from santelake.runtime.layout import Layout
from santelake.runtime.services.airflow import Airflow

RUN = textwrap.dedent("""
    import json, sys, time, uuid
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag()
    if bag.import_errors:
        print(json.dumps({"import_errors": {k: str(v) for k, v in bag.import_errors.items()}}))
        sys.exit(1)
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.models import DagModel, DagRun
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType
    wanted, timeout = json.loads(sys.argv[1]), float(sys.argv[2])
    deadline = time.monotonic() + timeout
    ids = {}
    for dag_id, conf in wanted.items():
        # A DAG file new to the dag-processor is serialised within its refresh interval (30 s).
        while True:
            with create_session() as session:
                if session.get(DagModel, dag_id) is not None:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"DAG {dag_id} never reached the metadatabase")
            time.sleep(2)
        run_id = f"test__{uuid.uuid4().hex[:12]}"
        trigger_dag(dag_id, triggered_by=DagRunTriggeredByType.CLI, run_id=run_id, conf=conf)
        ids[dag_id] = run_id
    runs = {}
    while len(runs) < len(ids) and time.monotonic() < deadline:
        with create_session() as session:
            for dag_id, run_id in ids.items():
                run = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).one()
                if str(run.state) in ("success", "failed"):
                    runs[dag_id] = {"state": str(run.state), "run_id": run_id, "tasks": sorted(
                        (t.task_id, str(t.state), t.try_number) for t in run.get_task_instances(session=session))}
        time.sleep(2)
    print(json.dumps({"dags": sorted(bag.dag_ids), "runs": runs, "pending": sorted(set(ids) - set(runs))}))
""")


RECENT = textwrap.dedent("""
    import json, sys
    from airflow.models import DagRun
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    dag_id, count = sys.argv[1], int(sys.argv[2])
    with create_session() as session:
        model = session.get(DagModel, dag_id)
        runs = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).limit(count).all()
        print(json.dumps({"paused": None if model is None else bool(model.is_paused), "runs": [
            {"run_id": r.run_id, "state": str(r.state), "tasks": sorted(
                (t.task_id, str(t.state), t.try_number) for t in r.get_task_instances(session=session))}
            for r in runs]}))
""")


def scheduler_report(layout: Layout, dag_id: str = "ingest", count: int = 4) -> str:
    """What the stack's scheduler did last, for a wait's assertion message: each service's health,
    whether ``dag_id`` is paused, its latest runs with their tasks' states, and the log of each task
    that did not succeed. A wait that times out says why, not only that it did."""
    lines = [f"{s.name}: {'healthy' if s.healthy else 'NOT healthy'} ({s.detail})" for s in stack.status(layout)]
    result = subprocess.run([sys.executable, "-c", RECENT, dag_id, str(count)], env=Airflow(layout).process_env(),
                            capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        return "\n".join([*lines, f"the metadatabase could not be read: {result.stderr[-2000:]}"])
    recent = json.loads(result.stdout.strip().splitlines()[-1])
    lines.append(f"{dag_id}: paused={recent['paused']}")
    for run in recent["runs"]:
        lines.append(f"run {run['run_id']}: {run['state']}, tasks {run['tasks']}")
        if logs := failures(layout, dag_id, run):
            lines.append(logs)
    return "\n".join(lines)


def task_log(layout: Layout, dag_id: str, run_id: str, task_id: str, attempt: int) -> str:
    """The task's log events, one a line (the log files of the stack's Airflow)."""
    path = (Airflow(layout).home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
            / f"attempt={attempt}.log")
    if not path.exists():
        return f"(no log at {path})"
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            lines.append(line)
            continue
        if "Loaded FileIO" not in str(event.get("event", "")):
            lines.append(f"{event.get('level', '')} {event.get('event', '')} {event.get('error_detail', '')}")
    return "\n".join(lines[-60:])


def run_dags(layout: Layout, confs: dict[str, dict[str, Any]], timeout: float = 900) -> dict[str, Any]:
    """Trigger each DAG with its configuration and wait; the DAG ids Airflow knows, and each run's outcome."""
    result = subprocess.run([sys.executable, "-c", RUN, json.dumps(confs), str(timeout)],
                            env=Airflow(layout).process_env(), capture_output=True, text=True,
                            timeout=timeout + 120, check=False)
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, f"{last}\n{result.stderr[-3000:]}"
    outcome: dict[str, Any] = json.loads(last)
    assert not outcome["pending"], (f"runs not finished within {timeout}s: {outcome['pending']}\n"
                                    + "\n".join(scheduler_report(layout, dag_id) for dag_id in outcome["pending"]))
    return outcome


def failures(layout: Layout, dag_id: str, run: dict[str, Any]) -> str:
    """The logs of the run's tasks that ran and did not succeed, for an assertion's message."""
    return "\n".join(f"--- {task_id} ({state}):\n{task_log(layout, dag_id, run['run_id'], task_id, max(tries, 1))}"
                     for task_id, state, tries in run["tasks"] if state not in ("success", "None"))


