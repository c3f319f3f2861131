"""Policy tests: the snds and ops tables with synthetic rows, the compiled policies applied."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from santelake.access.enforce import apply
from santelake.locations import schemas_dir
from santelake.policy.build import Build, build
from santelake.runtime.layout import Layout
from santelake.runtime.platform import platform_settings
from santelake.schema import TableSchema
from tests.integration.policy import lakedata

# Trino re-reads rules and groups every 5 s; a change must show within the 10 s target.
EFFECT_TIMEOUT_S = 10.0


def eventually(check: Callable[[], bool], timeout: float = EFFECT_TIMEOUT_S + 5, step: float = 0.25) -> float:
    """Seconds until ``check()`` is true; fails after ``timeout``."""
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not true after {timeout}s")
        time.sleep(step)


@pytest.fixture(scope="session")
def lake(catalog: Any) -> dict[str, TableSchema]:
    return lakedata.load(catalog, schemas_dir())


@pytest.fixture(scope="session")
def policy(layout: Layout, lake: dict[str, TableSchema]) -> Build:
    """The repository's policies, compiled for today and applied to the running stack."""
    built = build()
    apply(platform_settings(layout), built.compiled)
    time.sleep(6)  # one refresh period, in case the stack ran other rules before
    return built
