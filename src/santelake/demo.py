"""The demo `santelake up` ends with: synthetic extracts landed, loaded through the ingestion
DAGs, and a researcher's question answered through Trino."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from santelake.errors import SantelakeError
from santelake.ingest import runner
from santelake.runtime.layout import Layout
from santelake.runtime.services.airflow import Airflow

DEMO_SCALE = 20_000
DEMO_SEED = 2026
RESEARCHER = "alice"

QUESTION = """\
SELECT year(s.admission_date) AS year, c.chapter, c.title, count(*) AS stays
FROM iceberg.snds.hospital_stays s
JOIN iceberg.ref.icd10_chapters c ON substr(s.main_diagnosis, 1, 3) BETWEEN c.first_code AND c.last_code
GROUP BY 1, 2, 3
HAVING count(DISTINCT s.person_id) >= 10
ORDER BY 1, 4 DESC"""


def land(layout: Layout, scale: int = DEMO_SCALE, seed: int = DEMO_SEED) -> None:
    """Write the demo extracts into the landing folders, once."""
    from santelake.synth import synthesize

    if all(runner.landed_files(layout, source) for source in runner.SOURCES):
        return
    with tempfile.TemporaryDirectory(dir=layout.root) as scratch:
        report = synthesize(Path(scratch), scale=scale, seed=seed)
        for item in report.files:
            target = runner.landing_dir(layout, item.table)
            target.mkdir(parents=True, exist_ok=True)
            shutil.move(str(item.path), target / Path(item.path).name)


def run_dag(layout: Layout, dag_id: str) -> None:
    """Run one DAG to completion with ``airflow dags test``, against the running stack."""
    airflow = Airflow(layout)
    result = subprocess.run([airflow.airflow_bin, "dags", "test", dag_id], env=airflow.process_env(),
                            capture_output=True, text=True, timeout=1800, check=False)
    if result.returncode != 0 or "state=failed" in result.stdout + result.stderr:
        raise SantelakeError(f"DAG {dag_id} failed:\n{(result.stdout + result.stderr)[-4000:]}")


def load(layout: Layout, log: Callable[[str], None] = print) -> None:
    """Land the demo extracts and load them through the DAGs; a second run changes nothing."""
    from santelake.lake.catalog import open_catalog
    from santelake.lake.reference import ensure_reference_tables

    catalog = open_catalog(layout)
    ensure_reference_tables(catalog, runner.schemas())
    land(layout)
    lake_loader = runner.loader(layout, catalog)
    for source in runner.SOURCES:
        landed = runner.landed_files(layout, source)
        # A DAG run costs an Airflow start-up; skip it when every landed file is recorded.
        if all(lake_loader.is_recorded(f"{runner.NAMESPACE}.{source}", path) for path in landed):
            log(f"ingest_{source}: already loaded")
            continue
        run_dag(layout, f"ingest_{source}")
        log(f"ingest_{source}: loaded")


def answer(layout: Layout, user: str = RESEARCHER) -> str:
    from santelake.access import query
    from santelake.access.token import dev_token

    names, rows = query.run(layout, dev_token(layout, user), QUESTION)
    return f"Researcher {user!r} asks: hospital stays per ICD-10 chapter per year\n" + query.format_table(names, rows)


