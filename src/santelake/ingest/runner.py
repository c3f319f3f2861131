"""Ingestion on an installation: where files land, which key pseudonymises, load what landed."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from santelake.ingest.load import Loader, LoadResult
from santelake.lake.catalog import open_catalog
from santelake.locations import schemas_dir
from santelake.pseudonymise import Pseudonymiser
from santelake.pseudonymise.key import KEY_ENV, KEY_FILE_ENV, load_key_chain
from santelake.pseudonymise.rekey import check_tables
from santelake.runtime.layout import Layout
from santelake.schema import TableSchema, load_schemas

# Load order: beneficiaries first, so every other source can check its persons are known.
SOURCES = ("beneficiaries", "hospital_stays", "outpatient_claims", "pharmacy_dispensations", "gp_consultations")
NAMESPACE = "snds"


def schemas() -> dict[str, TableSchema]:
    return {s.full_name: s for s in load_schemas(schemas_dir())}


def landing_dir(layout: Layout, source: str) -> Path:
    """The local landing folder of a source (the landing bucket's stand-in in dev)."""
    return layout.root / "landing" / source


def pseudonym_key_file(layout: Layout) -> Path | None:
    """Where the key chain is kept: SANTELAKE_PSEUDONYM_KEY_FILE, else the installation's generated secret.

    None when SANTELAKE_PSEUDONYM_KEY gives the key itself: there is no file to add a key to.
    """
    if KEY_FILE_ENV in os.environ:
        return Path(os.environ[KEY_FILE_ENV])
    if KEY_ENV in os.environ:
        return None
    return layout.secrets.path("pseudonym-key")


def pseudonymiser(layout: Layout) -> Pseudonymiser:
    """The key chain from SANTELAKE_PSEUDONYM_KEY(_FILE) if set, else the installation's generated secret."""
    if KEY_ENV in os.environ or KEY_FILE_ENV in os.environ:
        return Pseudonymiser.from_chain(load_key_chain())
    path = layout.secrets.path("pseudonym-key")
    layout.secrets.get("pseudonym-key", generate=lambda: secrets.token_hex(32))
    return Pseudonymiser.from_chain(load_key_chain(path=path))


def loader(layout: Layout, catalog: Any | None = None, **options: Any) -> Loader:
    """A loader whose key chain is the one the lake's tables record (a re-keying may be under way)."""
    options.setdefault("gx_dir", layout.root / "gx")
    catalog = catalog or open_catalog(layout)
    declared, lake_pseudonymiser = schemas(), pseudonymiser(layout)
    check_tables(catalog, declared, lake_pseudonymiser)
    return Loader(catalog, lake_pseudonymiser, declared, **options)


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
