"""What one project dataset grants, column by column, once read against its table schema.

Lint, compile and explain all ask the same question ("may this project see this column,
and how?"); this module is the one answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from santelake.policy.model import Dataset, Mask
from santelake.schema import Column, TableSchema


@dataclass(frozen=True)
class ColumnGrant:
    column: Column
    granted: bool
    mask: Mask | None
    reason: str  # "by name", "by class sensitive", or "not granted"


def column_grants(dataset: Dataset, table: TableSchema) -> tuple[ColumnGrant, ...]:
    """Every live column of ``table``, granted or not, in table order."""
    grants = []
    for column in table.lake_columns:
        if column.name in dataset.columns:
            reason = "by name"
        elif column.sensitivity in dataset.sensitivities:
            reason = f"by class {column.sensitivity.value}"
        else:
            grants.append(ColumnGrant(column, False, None, "not granted"))
            continue
        grants.append(ColumnGrant(column, True, dataset.mask(column.name), reason))
    return tuple(grants)
