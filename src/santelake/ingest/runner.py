"""Ingestion on an installation: where files land, which key pseudonymises, load what landed."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from santelake.ingest.load import Loader, LoadResult
from santelake.lake.catalog import open_catalog
from santelake.pseudonymise import Pseudonymiser
from santelake.pseudonymise.key import KEY_ENV, KEY_FILE_ENV, load_key
from santelake.runtime.layout import Layout
from santelake.schema import TableSchema, load_schemas

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "iceberg_schemas"
# Load order: beneficiaries first, so every other source can check its persons are known.
SOURCES = ("beneficiaries", "hospital_stays", "outpatient_claims", "pharmacy_dispensations", "gp_consultations")
NAMESPACE = "snds"


def schemas_dir() -> Path:
    return Path(os.environ.get("SANTELAKE_SCHEMAS_DIR", SCHEMAS_DIR))


def schemas() -> dict[str, TableSchema]:
    return {s.full_name: s for s in load_schemas(schemas_dir())}


def landing_dir(layout: Layout, source: str) -> Path:
    """The local landing folder of a source (the landing bucket's stand-in in dev)."""
    return layout.root / "landing" / source


def pseudonymiser(layout: Layout) -> Pseudonymiser:
    """The key from SANTELAKE_PSEUDONYM_KEY(_FILE) if set, else the installation's generated secret."""
    if KEY_ENV in os.environ or KEY_FILE_ENV in os.environ:
        return Pseudonymiser.from_key(load_key())
    path = layout.secrets.path("pseudonym-key")
    layout.secrets.get("pseudonym-key", generate=lambda: secrets.token_hex(32))
    return Pseudonymiser.from_key(load_key(path=path))


def loader(layout: Layout, catalog: Any | None = None, **options: Any) -> Loader:
    options.setdefault("gx_dir", layout.root / "gx")
    return Loader(catalog or open_catalog(layout), pseudonymiser(layout), schemas(), **options)


def landed_files(layout: Layout, source: str) -> list[Path]:
    folder = landing_dir(layout, source)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def load_landed(layout: Layout, source: str) -> list[LoadResult]:
    """Load every file landed for ``source``; files already loaded are no-ops."""
    if source not in SOURCES:
        raise KeyError(f"unknown source {source!r}; known: {', '.join(SOURCES)}")
    lake_loader = loader(layout)
    return [lake_loader.load(f"{NAMESPACE}.{source}", path) for path in landed_files(layout, source)]
