"""The audit step: a Great Expectations suite generated from the schema file and the row
rules, run over the rows about to be published, with Data Docs kept for every run.

The row rules already split each batch with Arrow compute (fast, streaming); this suite
checks the staged result independently before publishing, so a bug in either one stops
the file instead of publishing bad rows. It runs on up to ``AUDIT_ROWS`` staged rows (the
first ones of the file), which keeps memory bounded for any file size. The "known person"
rule has no Great Expectations equivalent and is checked by the row rules only.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from santelake.ingest.rules import RowRule
from santelake.schema import TableSchema

AUDIT_ROWS = 50_000


@dataclass(frozen=True)
class Audit:
    success: bool
    failed: tuple[str, ...]
    data_docs: str


def _expectation(gx: Any, rule: RowRule) -> Any | None:
    kind, columns, args = rule.expectation
    e = gx.expectations
    if kind == "not_null":
        return e.ExpectColumnValuesToNotBeNull(column=columns[0])
    if kind == "regex":
        return e.ExpectColumnValuesToMatchRegex(column=columns[0], regex=str(args["regex"]))
    if kind == "between":
        low, high = args["min_value"], args["max_value"]
        if isinstance(low, dt.date):
            low, high = _as_datetime(low), _as_datetime(high)
        return e.ExpectColumnValuesToBeBetween(column=columns[0], min_value=low, max_value=high)
    if kind == "pair_order":
        return e.ExpectColumnPairValuesAToBeGreaterThanB(column_A=columns[1], column_B=columns[0], or_equal=True,
                                                         ignore_row_if="either_value_is_missing")
    if kind == "in_set":
        return e.ExpectColumnValuesToBeInSet(column=columns[0], value_set=list(args["value_set"]))  # type: ignore[call-overload]
    return None


def _as_datetime(day: Any) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day)


def suite(gx: Any, declared: TableSchema, rules: list[RowRule]) -> Any:
    result = gx.ExpectationSuite(name=declared.full_name)
    result.add_expectation(gx.expectations.ExpectTableColumnsToMatchSet(
        column_set=[c.name for c in declared.lake_columns], exact_match=True))
    for rule in rules:
        expectation = _expectation(gx, rule)
        if expectation is not None:
            result.add_expectation(expectation)
    return result


def _frame(sample: pa.Table) -> Any:
    """``sample`` as pandas, in the dtypes GX checks with vectorised code.

    GX compares a column with its bounds in one numpy operation only for int64, float64 and
    datetime64[ns] columns; for any other dtype (int32, datetime64[s]) it calls a Python
    function per value (0.15 s for the dates of 50,000 rows).
    """
    import pandas as pd

    frame = sample.to_pandas()
    for field in sample.schema:
        column = frame[field.name]
        if pa.types.is_date(field.type):
            try:
                frame[field.name] = pd.to_datetime(column).astype("datetime64[ns]")
            except (pd.errors.OutOfBoundsDatetime, OverflowError):
                # A date past 2262 or before 1677 fits no nanosecond stamp: kept as read
                # (GX then compares it value by value, slower but the same verdict).
                frame[field.name] = pd.to_datetime(column)
        elif pa.types.is_decimal(field.type):
            frame[field.name] = column.astype(float)
        elif pa.types.is_integer(field.type) and column.dtype.kind in "iu":
            frame[field.name] = column.astype("int64")
    return frame


def audit(docs_dir: Path, declared: TableSchema, rules: list[RowRule], sample: pa.Table) -> Audit:
    """Validate ``sample`` with the table's suite; this run's Data Docs go to ``docs_dir``.

    Each run has a Data Docs site of its own, written by an in-memory GX context: a shared
    project's site re-renders an index of every past run on each audit (measured: about a
    millisecond more per run already kept), so a lake loading files daily would audit slower
    each day. The run's folder also keeps its validation result as ``validation.json``.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.checkpoint.actions import UpdateDataDocsAction
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    if docs_dir.exists():
        raise FileExistsError(f"{docs_dir}: Data Docs of another audit are there already")
    docs_dir.mkdir(parents=True)
    site = {"class_name": "SiteBuilder", "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}}
    context = gx.get_context(project_config=DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={"run": site}, analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False)))
    batch = context.data_sources.add_pandas("staged").add_dataframe_asset(declared.full_name) \
        .add_batch_definition_whole_dataframe("staged-rows")
    definition = context.validation_definitions.add(gx.ValidationDefinition(
        name=declared.full_name, data=batch, suite=context.suites.add(suite(gx, declared, rules))))
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name=declared.full_name, validation_definitions=[definition],
        actions=[UpdateDataDocsAction(name="data-docs", site_names=["run"])]))
    outcome = checkpoint.run(batch_parameters={"dataframe": _frame(sample)})
    failed = []
    for run in outcome.run_results.values():
        described = run.to_json_dict()  # type: ignore[no-untyped-call]
        (docs_dir / "validation.json").write_text(json.dumps(described, indent=1, sort_keys=True))
        for result in run.results:
            config = result.expectation_config
            if not result.success and config is not None:
                failed.append(f"{config.type}({config.kwargs.get('column') or config.kwargs.get('column_A', '')})")
    # The validation result's page: the index lists it only through scripts no longer loaded.
    pages = [p for p in seal_data_docs(docs_dir) if p.relative_to(docs_dir).parts[0] == "validations"]
    if len(pages) != 1:
        raise RuntimeError(f"{docs_dir}: expected the page of one validation result, found {len(pages)}")
    return Audit(bool(outcome.success), tuple(failed), str(pages[0]))


# Data Docs pages load their styles and scripts from public CDNs (and a logo from a US
# cloud bucket): opening one would tell those hosts who reads which report, when. santelake
# sends nothing anywhere, so each page loses those tags and gets a policy that lets the
# browser fetch nothing remote. The pages stay readable without them (unstyled tables).
_REMOTE_TAG = re.compile(r"""<script\b[^>]*\bsrc=["']?https?://[^>]*>\s*</script\s*>"""
                         r"""|<link\b[^>]*\bhref=["']?https?://[^>]*>""", re.IGNORECASE)
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
LOCAL_ONLY = ('<meta http-equiv="Content-Security-Policy" '
              "content=\"default-src 'self' file: data: 'unsafe-inline'\">")
# Without Bootstrap and Font Awesome a page shows no pass/fail icon per expectation: say it
# in text, and give the tables borders.
PLAIN_STYLE = ("<style>i.fa-check-circle::before{content:'\\2713  passed';color:#1a7f37;font-style:normal}"
               "i.fa-times::before{content:'\\2717  failed';color:#b00020;font-style:normal;font-weight:bold}"
               "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top}"
               "body{font-family:sans-serif;margin:1em 2em}</style>")
_BODY = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_STATIC_REFERENCE = re.compile(r"""static/[^"'()\s<>]+""")


def seal_data_docs(docs_dir: Path) -> list[Path]:
    """Make a run's Data Docs local-only, keep only the static files its pages use; its pages.

    GX copies its 4 MB of static images into every site; a page uses one of them. The
    index lists the pages with scripts no longer loaded, so it gets a plain list of them.
    """
    used: set[str] = set()
    pages = sorted(docs_dir.rglob("*.html"))
    for page in pages:
        text = page.read_text(encoding="utf-8")
        head = _HEAD.search(text)
        if head is None:
            raise ValueError(f"{page}: a Data Docs page without <head>; cannot make it local-only")
        text = _REMOTE_TAG.sub("", text)
        text = text[:head.end()] + LOCAL_ONLY + PLAIN_STYLE + text[head.end():]
        if page == docs_dir / "index.html":
            text = _with_page_list(text, docs_dir, [p for p in pages if p != page])
        page.write_text(text, encoding="utf-8")
        used.update(reference.rsplit("static/", 1)[1] for reference in _STATIC_REFERENCE.findall(text))
    static = docs_dir / "static"
    for path in sorted(static.rglob("*"), reverse=True):  # files before their folders
        relative = path.relative_to(static).as_posix()
        if path.is_file() and relative not in used:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return pages


def _with_page_list(text: str, docs_dir: Path, pages: list[Path]) -> str:
    body = _BODY.search(text)
    if body is None:
        raise ValueError(f"{docs_dir / 'index.html'}: a Data Docs index without <body>")
    items = "".join(f'<li><a href="{html.escape(p.relative_to(docs_dir).as_posix())}">'
                    f"{html.escape(p.relative_to(docs_dir).parts[0])}: {html.escape(p.stem)}</a></li>" for p in pages)
    return text[:body.end()] + f"<nav><h2>Pages of this run</h2><ul>{items}</ul></nav>" + text[body.end():]
