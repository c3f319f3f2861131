"""What the ingestion DAGs' tasks call: each a plain function of the installation."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from santelake.config import load_settings
from santelake.ingest import runner
from santelake.runtime.layout import Layout


def _layout() -> Layout:
    return Layout(load_settings())


def discover(source: str) -> list[str]:
    """The landed files of ``source``, as paths."""
    return [str(path) for path in runner.landed_files(_layout(), source)]


def load_one(source: str, path: str) -> dict[str, object]:
    """Load one file; a file loaded before is a no-op; a rejected file fails the task."""
    result = runner.loader(_layout()).load(f"{runner.NAMESPACE}.{source}", Path(path))
    return asdict(result)
