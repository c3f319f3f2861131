"""query.run asks again only a query Trino ran nothing of. NO_NODES_AVAILABLE happens for real for
a few seconds after Trino starts (test_query_faults.py meets it by chance); here a stand-in
connection raises it on demand, so the bound on the wait is checked every run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from trino.exceptions import TrinoQueryError

from santelake.access import query
from santelake.config import load_settings
from santelake.errors import SantelakeError
from santelake.runtime.layout import Layout


def _error(name: str, message: str) -> TrinoQueryError:
    return TrinoQueryError({"errorName": name, "errorType": "INTERNAL_ERROR", "message": message}, "q1")


class _Connection:
    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes = outcomes
        self.description = [("n",)]

    def cursor(self) -> _Connection:
        return self

    def execute(self, sql: str) -> None:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome

    def fetchall(self) -> list[list[int]]:
        return [[7]]

    def close(self) -> None:
        pass


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(load_settings({"state_dir": tmp_path}, env={}))


def _answers(monkeypatch: pytest.MonkeyPatch, outcomes: list[Any]) -> list[Any]:
    monkeypatch.setattr(query, "connect", lambda *a, **k: _Connection(outcomes))
    monkeypatch.setattr(query, "NO_NODES_PAUSE", 0.01)
    return outcomes


def test_a_query_meeting_no_node_is_asked_again_until_a_node_is_there(
        layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes = _answers(monkeypatch, [_error(query.NO_NODES, "No nodes available to run query")] * 3 + [None])
    assert query.run(layout, "token", "SELECT 7") == (["n"], [(7,)])
    assert outcomes == []


def test_no_node_for_longer_than_the_patience_is_a_clear_error(
        layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    _answers(monkeypatch, [_error(query.NO_NODES, "No nodes available to run query")] * 1000)
    monkeypatch.setattr(query, "NO_NODES_PATIENCE", 0.05)
    with pytest.raises(SantelakeError, match="no node to run queries on"):
        query.run(layout, "token", "SELECT 7")


def test_other_query_errors_are_not_asked_again(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes = _answers(monkeypatch, [_error("DIVISION_BY_ZERO", "Division by zero"), None])
    with pytest.raises(TrinoQueryError, match="Division by zero"):
        query.run(layout, "token", "SELECT 1/0")
    assert outcomes == [None]


def test_a_stale_catalog_connection_is_asked_again_at_most_twice(
        layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = _error("GENERIC_INTERNAL_ERROR", query.STALE_CATALOG)
    outcomes = _answers(monkeypatch, [stale, stale, stale, None])
    with pytest.raises(TrinoQueryError):
        query.run(layout, "token", "SELECT 7")
    assert outcomes == [None]


def test_waiting_for_a_node_leaves_the_stale_catalog_retries_whole(
        layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    no_node = _error(query.NO_NODES, "No nodes available to run query")
    stale = _error("GENERIC_INTERNAL_ERROR", query.STALE_CATALOG)
    outcomes = _answers(monkeypatch, [no_node, no_node, stale, stale, None])
    assert query.run(layout, "token", "SELECT 7") == (["n"], [(7,)])
    assert outcomes == []
