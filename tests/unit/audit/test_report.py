"""The compliance report: reads, denials, and queries outside a project's dates, as text and as HTML."""

from __future__ import annotations

import datetime as dt
import json
import re

from santelake.audit.report import Query, Scope, build, query_from_event, render_html, render_text
from santelake.locations import policies_dir
from santelake.policy.loader import load_policies

POLICIES = load_policies(policies_dir())
CARDIO = next(p for p in POLICIES.projects if p.id == "cardio_outcomes")


def q(seq: int, user: str, when: dt.datetime, tables: tuple[str, ...] = ("iceberg.snds.beneficiaries",),
      rows: int = 10, error: str | None = None, groups: tuple[str, ...] = ("project_cardio_outcomes", "researchers"),
      text: str = "SELECT 1") -> Query:
    return Query(seq, when, f"20261202_080000_{seq:05d}_abcde", user, groups, text, tables, rows, error,
                 "Access Denied: Cannot select from table x" if error == "PERMISSION_DENIED" else None)


DURING = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
AFTER = dt.datetime.combine(CARDIO.end + dt.timedelta(days=3), dt.time(9), tzinfo=dt.UTC)
QUERIES = [
    q(1, "alice", DURING, rows=120),
    q(2, "alice", DURING, rows=30),
    q(3, "alice", DURING, tables=(), error="PERMISSION_DENIED", text="SELECT * FROM iceberg.ops.x <b>"),
    q(4, "bob", DURING, groups=("project_antidiabetics_2023",)),
    q(5, "alice", AFTER, groups=("researchers",), error="PERMISSION_DENIED"),
]


def test_reads_denials_and_queries_after_the_end_for_a_project() -> None:
    report = build(QUERIES, Scope(project=CARDIO), POLICIES)
    assert report.queries == 4  # bob is not a member
    assert report.reads[("alice", "iceberg.snds.beneficiaries")] == [3, 150]  # the denied one sent no row
    assert [d.seq for d in report.denied] == [3, 5]
    assert [(p, query.seq) for p, query, _ in report.outside] == [("cardio_outcomes", 5)]


def test_a_period_and_a_person_narrow_the_report() -> None:
    report = build(QUERIES, Scope(user="bob", since=DURING, until=DURING + dt.timedelta(hours=1)), POLICIES)
    assert report.queries == 1 and not report.denied


def test_text_and_html_say_the_same_and_the_page_is_self_contained() -> None:
    report = build(QUERIES, Scope(), POLICIES)
    text = render_text(report)
    assert "Denied attempts (2)" in text and "after the project's end" in text
    page = render_html(report)
    assert "<b>" not in page and "&lt;b&gt;" in page  # query text is escaped
    assert not re.search(r"(src|href)\s*=|https?://|<script|@import|url\(", page)
    assert "Denied attempts (2)" in page


def test_a_completed_event_becomes_a_query() -> None:
    payload = json.dumps({"event": {
        "metadata": {"queryId": "20261202_080000_00001_abcde", "query": "SELECT 1"},
        "context": {"user": "alice", "groups": ["researchers"]},
        "ioMetadata": {"inputs": [{"catalogName": "iceberg", "schema": "snds", "table": "beneficiaries"}]},
        "statistics": {"outputRows": 7}, "failureInfo": {"errorCode": {"name": "PERMISSION_DENIED"},
                                                         "failureMessage": "Access Denied"}}})
    query = query_from_event(9, DURING, payload)
    assert (query.user, query.tables, query.output_rows, query.error_code) == (
        "alice", ("iceberg.snds.beneficiaries",), 7, "PERMISSION_DENIED")


def test_statistics_and_plan_requests_are_listed_whatever_their_case_and_comments() -> None:
    texts = ["EXPLAIN ANALYZE SELECT count(*) FROM iceberg.snds.beneficiaries",
             "  -- how big is it?\n/* a plan */ explain SELECT 1",
             "show   stats FOR (SELECT sex_code FROM iceberg.snds.beneficiaries)",
             "SELECT 'EXPLAIN' AS word", "WITH explain AS (SELECT 1) SELECT * FROM explain"]
    queries = [q(n, "alice", DURING, text=text) for n, text in enumerate(texts, 1)]
    report = build(queries, Scope(), POLICIES)
    assert [p.seq for p in report.plan_requests] == [1, 2, 3]
    assert "Statistics and plan requests (3)" in render_text(report)
    assert "Statistics and plan requests (3)" in render_html(report)
