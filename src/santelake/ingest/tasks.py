"""What the ingestion DAG's tasks call: each a plain function of the platform settings,
read from the environment as a pod's (the local Airflow is given the same variables)."""

from __future__ import annotations

import datetime as dt
import logging

from santelake.ingest import landing
from santelake.settings import PlatformSettings

log = logging.getLogger(__name__)


def load_landed() -> list[dict[str, str]]:
    """Load every waiting extract; returns each object's outcome (a rejection does not stop the others)."""
    settings = PlatformSettings.from_environment()
    outcomes = landing.load_waiting(settings, report=lambda o: log.info("%s: %s", o.status, o.message))
    return [{"key": o.key, "source": o.source, "status": o.status, "message": o.message} for o in outcomes]


def sweep_landing() -> list[str]:
    """Delete loaded and rejected extracts past their retention."""
    settings = PlatformSettings.from_environment()
    return landing.Landing.of(settings).sweep(dt.datetime.now(dt.UTC), settings.landing_keep_loaded_days,
                                              settings.landing_keep_rejected_days)
