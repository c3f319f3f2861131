"""The integration tests share one real local stack, started (or reused) like `santelake up`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from santelake import demo
from santelake.access import query
from santelake.access.token import dev_token
from santelake.config import load_settings
from santelake.lake.catalog import open_catalog
from santelake.runtime import stack
from santelake.runtime.layout import Layout
from santelake.runtime.platform import platform_settings
from santelake.settings import PlatformSettings


@pytest.fixture(scope="session")
def layout() -> Layout:
    layout = Layout(load_settings())
    stack.up(layout, log=lambda line: print(f"[stack] {line}"))
    demo.load(layout)
    return layout


@pytest.fixture(scope="session")
def platform(layout: Layout) -> PlatformSettings:
    """The local installation's platform settings, as its Airflow tasks read them."""
    return platform_settings(layout)


@pytest.fixture(scope="session")
def catalog(platform: PlatformSettings) -> Any:
    return open_catalog(platform)


@pytest.fixture()
def sql(layout: Layout) -> Any:
    """Run SQL as a dev user: sql("dana", "select 1") -> rows."""

    def run(user: str, statement: str) -> list[tuple[Any, ...]]:
        return query.run(layout, dev_token(layout, user), statement)[1]

    return run


@pytest.fixture()
def scratch_namespace(catalog: Any) -> Iterator[str]:
    """A namespace for one test, dropped with its tables afterwards."""
    import uuid

    name = f"it_{uuid.uuid4().hex[:8]}"
    catalog.create_namespace(name)
    yield name
    for identifier in catalog.list_tables(name):
        catalog.purge_table(identifier)
    catalog.drop_namespace(name)
