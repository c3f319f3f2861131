"""The data catalogue: a static site from ``iceberg_schemas/``, ``policies/`` and the lake's figures.

Two views of the same tables:

- **public**: no login and no personal data, for patients' associations and citizens: each
  table's purpose, its columns and their meaning, the coding systems they use, its coverage
  (date range, persons and rows, rounded; a count under 10 is not shown) and freshness, and
  the projects using it with their purpose, legal basis, period and responsible
  organisation (no person's name);
- **researcher**: the same, plus per project the columns granted, the masks and row filters
  applied, and example queries.

Staff-only schemas (``ops``) are in neither. Every page is one HTML file with its style
inline; the search runs in the page on an index embedded in it: nothing is fetched from
anywhere. A column without a description fails the build, naming its file and line.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyiceberg.types import DateType

from santelake.errors import SantelakeError
from santelake.policy.grants import column_grants
from santelake.policy.model import Dataset, PolicySet, Project
from santelake.schema import TableSchema

PUBLIC, RESEARCHER = "public", "researcher"
VIEWS = (PUBLIC, RESEARCHER)
SMALL = 10  # counts under this are not shown (small cells)
# Coding systems a column's description may name, and what each is.
CODING_SYSTEMS = {
    "ICD-10": "International Classification of Diseases, 10th revision (WHO)",
    "ATC": "Anatomical Therapeutic Chemical classification of drugs (WHO)",
    "CIP13": "French 13-digit code of a medicine's pack (Club Inter-Pharmaceutique)",
    "CCAM": "French common classification of medical acts",
    "NGAP": "French general nomenclature of professional acts",
    "FINESS": "French national register of health and social establishments",
    "GHM": "French diagnosis-related groups (groupes homogènes de malades)",
    "INSEE": "French national statistics institute's codes (communes, departments)",
}


class CatalogueError(SantelakeError):
    """The catalogue cannot be built; the message names the file and line to fix."""


@dataclass(frozen=True)
class Coverage:
    """What the lake holds of a table (from ``catalogue.live``), before rounding."""

    rows: int
    persons: int | None
    first: dt.date | None
    last: dt.date | None
    last_load: dt.datetime | None
    loads: tuple[LoadReport, ...] = ()  # the latest loads, newest first (QUALITY_LOADS at most)


# How many of a table's loads its quality report shows, newest first.
QUALITY_LOADS = 10


@dataclass(frozen=True)
class LoadReport:
    """One load of a table as ``ops.ingested_files`` and ``ops.quarantine`` record it: its outcome,
    what happened to its rows, and the checks that set rows aside (names and counts, never values)."""

    loaded_at: dt.datetime
    status: str
    rows: int
    new: int | None
    updated: int | None
    refused: int | None
    opposed: int | None
    quarantined: int
    checks: tuple[tuple[str, int], ...]  # (check, rows it set aside), most rows first


def rounded(count: int | None) -> str:
    """A count fit for the public: two significant figures; under 10 not shown."""
    if count is None:
        return "not measured"
    if count < SMALL:
        return f"fewer than {SMALL}"
    digits = len(str(count)) - 2
    value = round(count, -digits) if digits > 0 else count
    return f"about {value:,}" if value != count else f"{count:,}"


def check_descriptions(schemas: Sequence[TableSchema]) -> None:
    """Every table and column of the catalogue has a description; else the build fails naming each."""
    missing = [f"{d.path}: table {d.full_name} has no doc" for d in schemas if not d.doc.strip()]
    missing += [f"{d.path}:{c.line}: column {d.full_name}.{c.name} has no doc"
                for d in schemas for c in d.lake_columns if not c.doc.strip()]
    if missing:
        raise CatalogueError("the catalogue is not built: a description is missing\n  " + "\n  ".join(missing))


def coding_systems(declared: TableSchema) -> list[tuple[str, str]]:
    """The coding systems the table's column descriptions name."""
    text = " ".join(c.doc for c in declared.lake_columns)
    return [(name, meaning) for name, meaning in CODING_SYSTEMS.items()
            if re.search(rf"(?<![A-Za-z]){re.escape(name)}(?![A-Za-z])", text)]


def catalogued(schemas: Mapping[str, TableSchema], policies: PolicySet) -> list[TableSchema]:
    """The tables the catalogue shows: every declared table outside the staff-only schemas."""
    staff = {s.schema for s in policies.platform.staff_only if s.catalog is None}
    return sorted((d for d in schemas.values() if d.namespace not in staff), key=lambda d: d.full_name)


def _users(policies: PolicySet, full_name: str) -> list[tuple[Project, Dataset]]:
    return [(p, d) for p in sorted(policies.projects, key=lambda p: p.id) for d in p.datasets
            if f"{d.namespace}.{d.table}" == full_name]


def _legal_basis(project: Project) -> str:
    basis = project.legal_basis
    if basis.reference_methodology:
        return f"CNIL reference methodology {basis.reference_methodology}"
    return f"authorisation {basis.authorisation}"


def _organisation(policies: PolicySet, username: str) -> str:
    return next((p.organisation for p in policies.people if p.username == username), "not stated")


def _status(project: Project, today: dt.date) -> str:
    if today < project.start:
        return "not started"
    return "ended" if today > project.end else "active"


STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#1b1f24;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.3rem .5rem;
text-align:left;vertical-align:top}th{background:#f3f5f7}code,pre{background:#f3f5f7;border-radius:4px}
pre{padding:.6rem;overflow-x:auto}code{padding:0 .2rem}a{color:#0b5cad}.muted{color:#57606a}
.view{display:inline-block;background:#e7f0fb;border-radius:4px;padding:0 .4rem;font-size:.85rem}
input[type=search]{width:100%;font-size:1rem;padding:.4rem;margin:.5rem 0 1rem}
"""

SEARCH = """
const box=document.getElementById('q'),list=document.getElementById('results'),index=JSON.parse(
document.getElementById('index').textContent);
function show(){const words=box.value.toLowerCase().split(/\\s+/).filter(w=>w);list.replaceChildren();
for(const item of index){if(words.every(w=>item.text.includes(w))){const li=document.createElement('li'),
a=document.createElement('a');a.href=item.href;a.textContent=item.title;li.append(a);
const s=document.createElement('span');s.className='muted';s.textContent=' \u2014 '+item.summary;li.append(s);
list.append(li);}}}
box.value=new URLSearchParams(location.search).get('q')||'';box.addEventListener('input',show);show();
"""


def _page(title: str, view: str, body: str, script: str = "") -> str:
    tail = f"<script>{script}</script>" if script else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f'<p class="muted"><a href="index.html">santelake data catalogue</a> '
            f'<span class="view">{html.escape(view)} view</span></p>{body}{tail}</body></html>\n')


def _e(value: object) -> str:
    return html.escape(str(value))


def _coverage_rows(declared: TableSchema, coverage: Coverage | None, measured: bool) -> str:
    if not measured:
        return "<p class='muted'>Coverage not measured in this build (built without the lake).</p>"
    if coverage is None:
        return "<p>Not loaded yet: the lake has no such table.</p>"
    dates = (f"{coverage.first:%B %Y} to {coverage.last:%B %Y}" if coverage.first and coverage.last
             else "not a table of dated events")
    persons = rounded(coverage.persons) if declared.person_columns else "no person column"
    load = f"{coverage.last_load:%Y-%m-%d}" if coverage.last_load else "never loaded"
    return ("<table><tr><th>period covered</th><th>rows</th><th>persons</th><th>last load</th></tr>"
            f"<tr><td>{_e(dates)}</td><td>{_e(rounded(coverage.rows))}</td><td>{_e(persons)}</td>"
            f"<td>{_e(load)}</td></tr></table>")


def examples(dataset: Dataset, declared: TableSchema) -> list[str]:
    """Queries a member of the project can run on this dataset as they are (the tests run them)."""
    name = f"iceberg.{dataset.full_name}"
    granted = [g.column for g in column_grants(dataset, declared) if g.granted]
    queries = [f"SELECT *\nFROM {name}\nLIMIT 10", f"SELECT count(*) AS row_count\nFROM {name}"]
    dates = [c.name for c in granted if isinstance(c.type, DateType) and dataset.mask(c.name) is None]
    if dates:
        queries.append(f"SELECT year({dates[0]}) AS year, count(*) AS row_count\nFROM {name}\n"
                       "GROUP BY 1\nORDER BY 1")
    return queries


def _grant(dataset: Dataset, declared: TableSchema) -> str:
    masks = {m.column: m.kind.value + (f" ({m.length})" if m.length else "") for m in dataset.masks}
    granted = [g for g in column_grants(dataset, declared) if g.granted]
    rows = "".join(f"<tr><td><code>{_e(g.column.name)}</code></td><td>{_e(masks.get(g.column.name, 'in clear'))}"
                   f"</td><td>{_e(g.reason)}</td></tr>" for g in granted)
    filters = [f"<code>{_e(f.column)}</code> in {_e(', '.join(map(str, f.values)))}" if f.values else
               f"<code>{_e(f.column)}</code> between {_e(f.low)} and {_e(f.high)}" for f in dataset.rows]
    rendered = "; ".join(filters) if filters else "none: every row"
    return (f"<table><tr><th>column granted</th><th>mask</th><th>granted</th></tr>{rows}</table>"
            f"<p>Row filter: {rendered}</p><p class='muted'><code>SELECT *</code> gives these columns, "
            "masked and filtered; any other column is refused.</p>")


def table_page(declared: TableSchema, policies: PolicySet, view: str, coverage: Coverage | None,
               today: dt.date, *, measured: bool = True) -> str:
    parts = [f"<h1><code>{_e(declared.full_name)}</code></h1><p>{_e(declared.doc)}</p>",
             "<h2>Coverage and freshness</h2>", _coverage_rows(declared, coverage, measured),
             f'<p><a href="{_e(quality_page_name(declared))}">Quality report of its latest loads</a></p>',
             "<h2>Columns</h2>",
             "<table><tr><th>column</th><th>type</th><th>meaning</th><th>class</th></tr>"]
    for column in declared.lake_columns:
        parts.append(f"<tr><td><code>{_e(column.name)}</code></td><td>{_e(column.type)}</td>"
                     f"<td>{_e(column.doc)}</td><td>{_e(column.sensitivity.value.replace('_', ' '))}</td></tr>")
    parts.append("</table>")
    systems = coding_systems(declared)
    if systems:
        parts.append("<h2>Coding systems</h2><ul>" + "".join(
            f"<li><b>{_e(name)}</b>: {_e(meaning)}</li>" for name, meaning in systems) + "</ul>")
    parts.append("<h2>Projects using this table</h2>")
    users = _users(policies, declared.full_name)
    if not users:
        parts.append("<p>None.</p>")
    for project, dataset in users:
        parts.append(f"<h3>{_e(project.title)} <span class='muted'>({_e(project.id)}, "
                     f"{_e(_status(project, today))})</span></h3>"
                     f"<p>{_e(project.purpose)}</p><p class='muted'>Legal basis: {_e(_legal_basis(project))}. "
                     f"From {project.start} to {project.end}. Responsible organisation: "
                     f"{_e(_organisation(policies, project.responsible))}.</p>")
        if view == RESEARCHER:
            parts.append(_grant(dataset, declared))
            parts.append("<p>Example queries (run as a member of the project):</p>" + "".join(
                f"<pre><code>{_e(query)}</code></pre>" for query in examples(dataset, declared)))
    return _page(declared.full_name, view, "".join(parts))


def _summary(text: str, limit: int = 140) -> str:
    """``text`` cut at a word before ``limit`` characters, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def page_name(declared: TableSchema) -> str:
    return f"{declared.full_name}.html"


def quality_page_name(declared: TableSchema) -> str:
    return f"{declared.full_name}.quality.html"


def _count(value: int | None, view: str) -> str:
    """A row count of one load: exact for researchers, rounded in public (a count under 10 not shown)."""
    if value is None:
        return "not recorded"
    return str(value) if view == RESEARCHER else rounded(value)


def quality_page(declared: TableSchema, view: str, coverage: Coverage | None, *, measured: bool) -> str:
    """The quality report of the table's latest loads, in the catalogue's own style: each load's
    outcome, what happened to its rows, and which checks set rows aside (docs/ingestion.md)."""
    parts = [f"<h1>Quality of the latest loads: <code>{_e(declared.full_name)}</code></h1>",
             f'<p><a href="{_e(page_name(declared))}">Back to the table</a>. Each load is one delivered file, '
             "checked before anything is published: a row that fails a check is set aside (quarantined, "
             "with the check's name) and the rest published; a file whose checks fail as a whole "
             "publishes nothing (rejected). Newest first, at most "
             f"{QUALITY_LOADS}.</p>"]
    if not measured:
        parts.append("<p class='muted'>Loads not read in this build (built without the lake).</p>")
        return _page(f"Quality: {declared.full_name}", view, "".join(parts))
    if coverage is None or not coverage.loads:
        parts.append("<p>No load recorded yet.</p>")
        return _page(f"Quality: {declared.full_name}", view, "".join(parts))
    parts.append("<table><tr><th>loaded (UTC)</th><th>outcome</th><th>rows published</th><th>new</th>"
                 "<th>updated</th><th>refused as already present</th><th>dropped (objection)</th>"
                 "<th>set aside</th><th>by check</th></tr>")
    for load in coverage.loads:
        checks = ", ".join(f"{name}: {_count(count, view)}" for name, count in load.checks) or "none"
        parts.append(f"<tr><td>{load.loaded_at:%Y-%m-%d %H:%M}</td><td>{_e(load.status)}</td>"
                     f"<td>{_e(_count(load.rows, view))}</td><td>{_e(_count(load.new, view))}</td>"
                     f"<td>{_e(_count(load.updated, view))}</td><td>{_e(_count(load.refused, view))}</td>"
                     f"<td>{_e(_count(load.opposed, view))}</td><td>{_e(_count(load.quarantined, view))}</td>"
                     f"<td>{_e(checks)}</td></tr>")
    parts.append("</table>")
    return _page(f"Quality: {declared.full_name}", view, "".join(parts))


def build(out: Path, schemas: Mapping[str, TableSchema], policies: PolicySet, view: str,
          coverage: Mapping[str, Coverage] | None = None, today: dt.date | None = None) -> list[Path]:
    """Write the catalogue's pages into ``out``; returns them, the index first."""
    if view not in VIEWS:
        raise CatalogueError(f"no catalogue view {view!r}; the views are {', '.join(VIEWS)}")
    tables = catalogued(schemas, policies)
    check_descriptions(tables)
    day = today or dt.date.today()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    index = []
    for declared in tables:
        figures = (coverage or {}).get(declared.full_name)
        measured = coverage is not None
        path = out / page_name(declared)
        path.write_text(table_page(declared, policies, view, figures, day, measured=measured), encoding="utf-8")
        quality = out / quality_page_name(declared)
        quality.write_text(quality_page(declared, view, figures, measured=measured), encoding="utf-8")
        written += [path, quality]
        words = [declared.full_name, declared.doc, *(f"{c.name} {c.doc}" for c in declared.lake_columns),
                 *(name for name, _ in coding_systems(declared)),
                 *(f"{p.id} {p.title}" for p, _ in _users(policies, declared.full_name))]
        index.append({"title": declared.full_name, "href": page_name(declared), "summary": _summary(declared.doc),
                      "text": " ".join(words).lower()})
    embedded = json.dumps(index, ensure_ascii=False).replace("</", "<\\/")
    body = ("<h1>santelake data catalogue</h1><p>The tables of the lake: what each holds, how far it reaches, "
            "and which research projects use it.</p>"
            '<input type="search" id="q" placeholder="Search tables, columns, codes, projects" '
            'aria-label="Search the catalogue"><ul id="results"></ul>'
            f'<script type="application/json" id="index">{embedded}</script>'
            "<noscript><ul>" + "".join(f'<li><a href="{_e(i["href"])}">{_e(i["title"])}</a></li>'
                                       for i in index) + "</ul></noscript>")
    index_path = out / "index.html"
    index_path.write_text(_page("santelake data catalogue", view, body, SEARCH), encoding="utf-8")
    return [index_path, *written]
