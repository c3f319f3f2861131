from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture()
def policies(tmp_path: Path) -> Path:
    """A copy of the repository's policies/ to change in one test."""
    target = tmp_path / "policies"
    shutil.copytree(REPO / "policies", target)
    return target


@pytest.fixture()
def schemas() -> Path:
    return REPO / "iceberg_schemas"
