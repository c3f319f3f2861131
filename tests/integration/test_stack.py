"""The stack is up, healthy, on loopback only, and survives a restart with its data."""

from __future__ import annotations

from typing import Any

from santelake.lake.catalog import open_catalog
from santelake.runtime import stack
from santelake.runtime.layout import Layout
from santelake.runtime.listening import descendants, listeners
from santelake.runtime.platform import platform_settings


def test_status_reports_every_service_healthy(layout: Layout) -> None:
    statuses = {s.name: s for s in stack.status(layout)}
    assert set(statuses) == {"postgres", "minio", "audit", "keycloak", "trino", "airflow", "catalogue"}
    for st in statuses.values():
        assert st.healthy, f"{st.name}: {st.detail}"
        assert all(st.pids), st.name
        assert st.url.startswith("https://localhost:")


def test_no_service_listens_beyond_loopback(layout: Layout) -> None:
    pids = [pid for st in stack.status(layout) for pid in st.pids if pid]
    found = listeners(descendants(pids))
    ports = {item.port for item in found}
    assert layout.settings.trino_port in ports and layout.settings.keycloak_port in ports
    exposed = [item for item in found if not item.loopback]
    assert exposed == [], f"listening beyond loopback: {exposed}"


def test_up_twice_is_harmless(layout: Layout) -> None:
    before = {s.name: s.pids for s in stack.status(layout)}
    stack.up(layout, log=lambda _: None)
    assert {s.name: s.pids for s in stack.status(layout)} == before


def test_down_then_up_keeps_every_table_and_row(layout: Layout, sql: Any) -> None:
    query = "SELECT count(*), count(DISTINCT person_id), max(discharge_date) FROM iceberg.snds.hospital_stays"
    before = sql("dana", query)
    tables_before = sorted(open_catalog(platform_settings(layout)).list_tables("snds"))
    stack.down(layout, log=lambda _: None)
    assert not any(s.healthy for s in stack.status(layout))
    stack.up(layout, log=lambda _: None)
    assert sql("dana", query) == before
    assert before[0][0] > 0
    # A new catalog: the old one's pooled connections died with the database.
    assert sorted(open_catalog(platform_settings(layout)).list_tables("snds")) == tables_before
