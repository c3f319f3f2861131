"""``santelake audit report``: what compliance asks of the trail, for a project, a person or a period.

- who queried which tables, how often, and how many rows left the platform;
- denied attempts;
- queries by a project's members after the project's end (or before its start), from the
  project files in ``policies/``;
- statistics and plan requests (``EXPLAIN``, ``EXPLAIN ANALYZE``, ``SHOW STATS``): Trino's
  estimates and scan counts come from whole tables, before a row filter, and no Trino
  setting refuses them per user, so compliance reviews them (docs/compliance.md, "Metadata
  channels").

Plain text, or one self-contained HTML page (inline style, no script, no remote asset).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from santelake.policy.model import PolicySet, Project

DENIED = "PERMISSION_DENIED"
# A statement that asks for Trino's plan or statistics, after any leading comments.
_PLAN_REQUEST = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*(EXPLAIN|SHOW\s+STATS)\b", re.IGNORECASE | re.DOTALL)


def plan_request(text: str) -> bool:
    """Whether ``text`` is an ``EXPLAIN`` (``ANALYZE`` or not) or a ``SHOW STATS``."""
    return _PLAN_REQUEST.match(text) is not None


@dataclass(frozen=True)
class Query:
    """One completed query, as the trail recorded it."""

    seq: int
    recorded_at: dt.datetime
    query_id: str
    user: str
    groups: tuple[str, ...]
    query: str
    tables: tuple[str, ...]  # catalog.schema.table read
    output_rows: int
    error_code: str | None
    error_message: str | None


def query_from_event(seq: int, recorded_at: dt.datetime, payload: str) -> Query:
    """A completed query from a ``trino.query_completed`` record's payload."""
    event = json.loads(payload).get("event", {})
    context, metadata = event.get("context", {}), event.get("metadata", {})
    inputs = event.get("ioMetadata", {}).get("inputs", [])
    tables = tuple(sorted({f"{i.get('catalogName')}.{i.get('schema')}.{i.get('table')}" for i in inputs}))
    failure = event.get("failureInfo") or {}
    return Query(seq, recorded_at, str(metadata.get("queryId", "")), str(context.get("user", "")),
                 tuple(context.get("groups") or ()), str(metadata.get("query", "")), tables,
                 int((event.get("statistics") or {}).get("outputRows") or 0),
                 (failure.get("errorCode") or {}).get("name"), failure.get("failureMessage"))


@dataclass(frozen=True)
class Scope:
    project: Project | None = None
    user: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def describe(self) -> str:
        parts = []
        if self.project is not None:
            parts.append(f"project {self.project.id} ({', '.join(self.project.members)})")
        if self.user:
            parts.append(f"user {self.user}")
        parts.append(f"from {self.since.isoformat() if self.since else 'the first record'} "
                     f"to {self.until.isoformat() if self.until else 'the last'}")
        return "; ".join(parts)

    def holds(self, q: Query) -> bool:
        if self.since is not None and q.recorded_at < self.since:
            return False
        if self.until is not None and q.recorded_at >= self.until:
            return False
        if self.user and q.user != self.user:
            return False
        return self.project is None or q.user in self.project.members


@dataclass
class Report:
    scope: Scope
    queries: int = 0
    # (user, table) -> [queries, rows out]
    reads: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    denied: list[Query] = field(default_factory=list)
    # (project id, query, why)
    outside: list[tuple[str, Query, str]] = field(default_factory=list)
    plan_requests: list[Query] = field(default_factory=list)


def build(queries: Iterable[Query], scope: Scope, policies: PolicySet) -> Report:
    report = Report(scope)
    projects = [scope.project] if scope.project is not None else list(policies.projects)
    for q in queries:
        if not scope.holds(q):
            continue
        report.queries += 1
        if q.error_code == DENIED:
            report.denied.append(q)
        elif plan_request(q.query):
            report.plan_requests.append(q)
        for table in q.tables or ("(no table)",):
            entry = report.reads[(q.user, table)]
            entry[0] += 1
            if q.error_code is None:
                entry[1] += q.output_rows
        day = q.recorded_at.date()
        for project in projects:
            if q.user not in project.members:
                continue
            if project.group not in q.groups and not _reads_project(q, project):
                continue
            if day > project.end:
                report.outside.append((project.id, q, f"after the project's end ({project.end})"))
            elif day < project.start:
                report.outside.append((project.id, q, f"before the project's start ({project.start})"))
    return report


def _reads_project(q: Query, project: Project) -> bool:
    """Whether ``q`` read one of the project's tables (a member's query after the end has no project group)."""
    names = {f"iceberg.{d.full_name}" for d in project.datasets}
    return bool(names & set(q.tables))


def render_text(report: Report) -> str:
    lines = [f"santelake audit report: {report.scope.describe()}", f"{report.queries} queries", ""]
    lines.append("Reads (user, table, queries, rows out):")
    for (user, table), (count, rows) in sorted(report.reads.items()):
        lines.append(f"  {user:16} {table:48} {count:8} {rows:12}")
    if not report.reads:
        lines.append("  none")
    lines += ["", f"Denied attempts ({len(report.denied)}):"]
    for q in report.denied:
        lines.append(f"  {q.recorded_at:%Y-%m-%d %H:%M:%S} {q.user:16} {q.query_id}  {_short(q.error_message)}")
    lines += ["", f"Queries by members outside their project's dates ({len(report.outside)}):"]
    for project, q, why in report.outside:
        lines.append(f"  {q.recorded_at:%Y-%m-%d %H:%M:%S} {q.user:16} {project}: {why}  {q.query_id}")
    lines += ["", f"Statistics and plan requests ({len(report.plan_requests)}):"]
    for q in report.plan_requests:
        lines.append(f"  {q.recorded_at:%Y-%m-%d %H:%M:%S} {q.user:16} {q.query_id}  {_short(q.query)}")
    return "\n".join(lines) + "\n"


def _short(text: str | None, width: int = 100) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


_STYLE = ("body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}"
          "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;"
          "text-align:left;vertical-align:top}th{background:#f0f0f0}td.n{text-align:right}"
          "h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}.none{color:#777}")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: frozenset[int] = frozenset()) -> str:
    if not rows:
        return '<p class="none">None.</p>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td{" class=n" if i in numeric else ""}>{html.escape(str(v))}</td>'
                                    for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(report: Report) -> str:
    reads = [(u, t, c, r) for (u, t), (c, r) in sorted(report.reads.items())]
    denied = [(f"{q.recorded_at:%Y-%m-%d %H:%M:%S}", q.user, q.query_id, _short(q.query, 200),
               _short(q.error_message, 200)) for q in report.denied]
    outside = [(f"{q.recorded_at:%Y-%m-%d %H:%M:%S}", q.user, p, why, q.query_id) for p, q, why in report.outside]
    plans = [(f"{q.recorded_at:%Y-%m-%d %H:%M:%S}", q.user, q.query_id, _short(q.query, 200))
             for q in report.plan_requests]
    return "".join([
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>santelake audit report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>santelake audit report</h1>",
        f"<p>{html.escape(report.scope.describe())}. {report.queries} queries.</p>",
        "<h2>Reads</h2>", _table(("user", "table", "queries", "rows out"), reads, frozenset({2, 3})),
        f"<h2>Denied attempts ({len(denied)})</h2>",
        _table(("time (UTC)", "user", "query id", "query", "refused"), denied),
        f"<h2>Queries by members outside their project's dates ({len(outside)})</h2>",
        _table(("time (UTC)", "user", "project", "why", "query id"), outside),
        f"<h2>Statistics and plan requests ({len(plans)})</h2>",
        _table(("time (UTC)", "user", "query id", "query"), plans),
        "</body></html>\n",
    ])


def read_queries(conn: Any, since: dt.datetime | None, until: dt.datetime | None) -> Iterable[Query]:
    """Completed queries recorded in [since, until), in order (memory flat: a server-side cursor)."""
    with conn, conn.cursor(name="audit_report") as cur:
        cur.itersize = 5000
        cur.execute("select seq, recorded_at, payload from audit.records where kind = 'trino.query_completed' "
                    "and recorded_at >= coalesce(%s, '-infinity'::timestamptz) "
                    "and recorded_at < coalesce(%s, 'infinity'::timestamptz) order by seq", (since, until))
        for seq, recorded_at, payload in cur:
            yield query_from_event(int(seq), recorded_at, payload)
