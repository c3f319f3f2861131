"""Ingestion on an installation: its declared tables and sources, its key chain, its loader.

Everything here is a function of the platform settings (``santelake.settings``), so it runs
the same in an Airflow pod and on the local stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from santelake.ingest.keyindex import RunCache
from santelake.ingest.load import Loader
from santelake.lake.catalog import open_catalog
from santelake.locations import schemas_dir
from santelake.pseudonymise import Pseudonymiser
from santelake.pseudonymise.key import load_key_chain
from santelake.pseudonymise.rekey import check_tables
from santelake.schema import TableSchema, load_schemas
from santelake.schema import sources as ordered_sources
from santelake.settings import PlatformSettings


def schemas(directory: Path | None = None) -> dict[str, TableSchema]:
    """Every declared table by full name, from ``directory`` (default: ``locations.schemas_dir``)."""
    return {s.full_name: s for s in load_schemas(directory or schemas_dir())}


def sources(declared: dict[str, TableSchema] | None = None) -> tuple[TableSchema, ...]:
    """The tables loaded from source files, in load order: the one list of sources."""
    return ordered_sources(tuple((declared or schemas()).values()))


def pseudonymiser(settings: PlatformSettings) -> Pseudonymiser:
    """The key chain of ``SANTELAKE_PSEUDONYM_KEY_FILE``."""
    return Pseudonymiser.from_chain(load_key_chain(path=settings.pseudonym_key_file))


def key_cache(settings: PlatformSettings) -> RunCache:
    """Where this installation's loads keep the key index's runs decoded (``ingest.keyindex.RunCache``)."""
    return RunCache(settings.work_dir / "key-cache", settings.key_cache_bytes)


def loader(settings: PlatformSettings, catalog: Any | None = None, declared: dict[str, TableSchema] | None = None,
           **options: Any) -> Loader:
    """A loader whose key chain is the one the lake's tables record (a re-keying may be under way);
    ``declared``: the installation's schemas, when the caller has read them already."""
    options.setdefault("gx_dir", settings.work_dir / "gx")
    options.setdefault("key_cache", key_cache(settings))
    catalog = catalog or open_catalog(settings)
    declared, lake_pseudonymiser = declared or schemas(settings.schemas_dir), pseudonymiser(settings)
    check_tables(catalog, declared, lake_pseudonymiser)
    return Loader(catalog, lake_pseudonymiser, declared, **options)
