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
import os
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
    import pandas as pd

    frame = sample.to_pandas()
    for field in sample.schema:
        if pa.types.is_date(field.type):
            frame[field.name] = pd.to_datetime(frame[field.name])
        elif pa.types.is_decimal(field.type):
            frame[field.name] = frame[field.name].astype(float)
    return frame


def audit(project_dir: Path, declared: TableSchema, rules: list[RowRule], sample: pa.Table) -> Audit:
    """Validate ``sample`` with the table's suite; Data Docs go under ``project_dir``."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.checkpoint.actions import UpdateDataDocsAction
    from great_expectations.data_context.types.base import ProgressBarsConfig

    project_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(project_dir))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    # Added or updated on every audit: a data source read back from the project's config has
    # no data context, and GX refuses a second run on it in the same process.
    source = context.data_sources.add_or_update_pandas("staged")
    asset = next((a for a in source.assets if a.name == declared.full_name), None) \
        or source.add_dataframe_asset(declared.full_name)
    batch = next((b for b in asset.batch_definitions if b.name == "staged-rows"), None) \
        or asset.add_batch_definition_whole_dataframe("staged-rows")
    expectations = context.suites.add_or_update(suite(gx, declared, rules))
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=declared.full_name, data=batch, suite=expectations))
    checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
        name=declared.full_name, validation_definitions=[definition],
        actions=[UpdateDataDocsAction(name="data-docs")]))
    outcome = checkpoint.run(batch_parameters={"dataframe": _frame(sample)})
    failed = []
    for run in outcome.run_results.values():
        for result in run.results:
            config = result.expectation_config
            if not result.success and config is not None:
                failed.append(f"{config.type}({config.kwargs.get('column') or config.kwargs.get('column_A', '')})")
    docs = project_dir / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    return Audit(bool(outcome.success), tuple(failed), str(docs))
