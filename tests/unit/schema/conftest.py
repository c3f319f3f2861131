"""A real pyiceberg SqlCatalog on SQLite with a local-file warehouse, and table-file helpers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyiceberg.catalog.sql import SqlCatalog

from santelake.schema import TableSchema, load_table_schema

# A table that uses every part of the format; tests change one thing at a time.
VISITS_FILE = Path(__file__).parent / "data" / "lab" / "visits.yaml"


@pytest.fixture
def visits_yaml() -> str:
    return VISITS_FILE.read_text(encoding="utf-8")


@pytest.fixture
def catalog(tmp_path: Path) -> SqlCatalog:
    return SqlCatalog(
        "santelake",
        uri=f"sqlite:///{tmp_path / 'catalog.db'}",
        warehouse=f"file://{tmp_path / 'warehouse'}",
    )


@pytest.fixture
def write_table_file(tmp_path: Path) -> Callable[[str], Path]:
    """Write YAML text to ``<tmp>/schemas/<namespace>/<table>.yaml``, where the loader expects it."""

    def write(text: str, namespace: str = "lab", table: str = "visits") -> Path:
        path = tmp_path / "schemas" / namespace / f"{table}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def declare(
    write_table_file: Callable[[str], Path], visits_yaml: str
) -> Callable[[Callable[[dict[str, Any]], None]], TableSchema]:
    """Load the visits table after ``change`` edits its parsed YAML in place."""

    def declare_with(change: Callable[[dict[str, Any]], None] = lambda document: None) -> TableSchema:
        document = yaml.safe_load(visits_yaml)
        change(document)
        return load_table_schema(write_table_file(yaml.safe_dump(document, sort_keys=False)))

    return declare_with
