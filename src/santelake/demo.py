"""The demo `santelake up` ends with: synthetic extracts landed in the landing bucket, loaded
by the Airflow scheduler's ingestion DAG, and a researcher's question answered through Trino."""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from santelake.errors import SantelakeError
from santelake.ingest import runner
from santelake.ingest.landing import INCOMING, REJECTED, Landing
from santelake.lake.catalog import open_catalog
from santelake.runtime.layout import Layout
from santelake.runtime.platform import platform_settings
from santelake.settings import PlatformSettings

DEMO_SCALE = 20_000
DEMO_SEED = 2026
RESEARCHER = "alice"
# The scheduler looks every 30 s; the demo's five extracts load in about a minute on 2 cores.
LOAD_TIMEOUT_S = 900

QUESTION = """\
SELECT year(s.admission_date) AS year, c.chapter, c.title, count(*) AS stays
FROM iceberg.snds.hospital_stays s
JOIN iceberg.ref.icd10_chapters c ON substr(s.main_diagnosis, 1, 3) BETWEEN c.first_code AND c.last_code
GROUP BY 1, 2, 3
HAVING count(DISTINCT s.person_id) >= 10
ORDER BY 1, 4 DESC, 2"""


def _loaded_tables(settings: PlatformSettings) -> set[str]:
    """The source tables that already hold a published file."""
    catalog = open_catalog(settings)
    try:
        identifier = runner.schemas(settings.schemas_dir)["ops.ingested_files"].identifier
        if not catalog.table_exists(identifier):
            return set()
        records = catalog.load_table(identifier).scan(row_filter="status == 'published'",
                                                     selected_fields=("target_table",)).to_arrow()
        return set(records.column("target_table").to_pylist())
    finally:
        catalog.engine.dispose()


def land(settings: PlatformSettings, scale: int = DEMO_SCALE, seed: int = DEMO_SEED) -> list[str]:
    """Land the demo extracts of every source not loaded yet; returns their keys."""
    from santelake.synth import synthesize

    sources = runner.sources(runner.schemas(settings.schemas_dir))
    loaded = _loaded_tables(settings)
    missing = {s.name for s in sources if s.full_name not in loaded}
    if not missing:
        return []
    landing = Landing.of(settings)
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.work_dir) as scratch:
        report = synthesize(Path(scratch), scale=scale, seed=seed)
        return [landing.land(item.table, Path(item.path)) for item in report.files if item.table in missing]


def wait_loaded(settings: PlatformSettings, keys: list[str], log: Callable[[str], None],
                timeout: float = LOAD_TIMEOUT_S) -> None:
    """Wait until the scheduler has taken every key out of ``incoming/``; fails on a rejection."""
    landing = Landing.of(settings)
    pending = set(keys)
    names = {Path(key).name for key in keys}
    started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)  # the store's clock is this machine's
    deadline = time.monotonic() + timeout
    while pending:
        rejected = [o for o in landing.objects(REJECTED) if o.name in names and o.modified >= started]
        if rejected:
            raise SantelakeError("demo extracts rejected:\n" + "\n".join(f"{o.key}: {o.reason}" for o in rejected))
        waiting = {o.key for o in landing.objects(INCOMING)}
        for key in sorted(pending - waiting):
            log(f"{key}: loaded by the scheduler")
            pending.discard(key)
        if pending and time.monotonic() > deadline:
            raise SantelakeError(f"the scheduler did not load {', '.join(sorted(pending))} within {timeout:.0f}s; "
                                 "see the `ingest` DAG's runs in Airflow and its task logs")
        if pending:
            time.sleep(2)


def load(layout: Layout, log: Callable[[str], None] = print) -> None:
    """Land the demo extracts and let the scheduler load them; a second run changes nothing."""
    settings = platform_settings(layout)
    keys = land(settings)
    if not keys:
        log("demo extracts: already loaded")
        return
    log(f"demo extracts landed in s3://{settings.landing_bucket}/{INCOMING}/: {len(keys)} files")
    wait_loaded(settings, keys, log)


def answer(layout: Layout, user: str = RESEARCHER) -> str:
    from santelake.access import query
    from santelake.access.token import dev_token

    names, rows = query.run(layout, dev_token(layout, user), QUESTION)
    return f"Researcher {user!r} asks: hospital stays per ICD-10 chapter per year\n" + query.format_table(names, rows)
