from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from santelake.ingest import runner
from santelake.ingest.keyindex import RunCache
from santelake.ingest.load import Loader
from santelake.settings import KEY_CACHE_BYTES, PlatformSettings
from santelake.synth import synthesize


@pytest.fixture(scope="session")
def extracts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic set of every source, shared read-only by the tests."""
    out = tmp_path_factory.mktemp("extracts")
    synthesize(out, scale=300, seed=99)
    return out


@pytest.fixture()
def scratch_loader(platform: PlatformSettings, catalog: Any, scratch_namespace: str,
                   tmp_path: Path) -> Callable[..., Loader]:
    """Loaders whose every table (sources and ops) lives in a namespace of their own: ``make(**options)``."""
    schemas = {}
    for declared in runner.schemas().values():
        moved = dataclasses.replace(declared, namespace=scratch_namespace)
        schemas[f"{declared.namespace}.{declared.name}"] = moved
    pseudonymiser = runner.pseudonymiser(platform)

    def make(**options: Any) -> Loader:
        # Lookups by the declared names keep working; tables are created in the scratch namespace.
        # A key cache as ``runner.loader`` gives every installation's loads (one per test: cold at first).
        defaults = {"flush_rows": 200, "gx_dir": tmp_path / "gx",
                    "key_cache": RunCache(tmp_path / "key-cache", KEY_CACHE_BYTES)}
        return Loader(catalog, pseudonymiser, schemas, **(defaults | options))

    return make


@pytest.fixture()
def scratch(scratch_loader: Callable[..., Loader], scratch_namespace: str) -> tuple[Loader, str]:
    """A loader of the scratch namespace, and the namespace."""
    return scratch_loader(), scratch_namespace
