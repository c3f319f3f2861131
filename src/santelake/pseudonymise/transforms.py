"""Apply a column's declared transform steps to one batch of raw values.

Each name in ``santelake.schema.Transform`` but ``drop`` (which only dropped source
columns take) maps to one function here. The result is cast to the column's lake type, so
a batch either comes out exactly as the table wants it or raises InvalidValuesError
naming the column and rows.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.types import DecimalType

from santelake.pseudonymise.errors import InvalidValuesError
from santelake.pseudonymise.generalise import month_start, postcode_to_department, year_start
from santelake.pseudonymise.parse import (
    clean_text,
    normalise_pipe_list,
    parse_date_ddmmyyyy,
    parse_date_iso,
    parse_decimal,
)
from santelake.pseudonymise.pseudonym import Pseudonymiser
from santelake.schema.model import Column, Transform

_Step = Callable[[pa.Array, Column, Pseudonymiser], pa.Array]


def _decimal(values: pa.Array, column: Column, _: Pseudonymiser) -> pa.Array:
    if not isinstance(column.type, DecimalType):
        raise TypeError(f"column {column.name!r}: the decimal transform needs a decimal column")
    return parse_decimal(values, column.type.precision, column.type.scale)


def _identity(values: pa.Array, column: Column, _: Pseudonymiser) -> pa.Array:
    is_text = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    return clean_text(values) if is_text else values


STEPS: dict[Transform, _Step] = {
    Transform.IDENTITY: _identity,
    Transform.PSEUDONYMISE: lambda values, _, pseudonymiser: pseudonymiser.pseudonymise_array(values),
    Transform.PARSE_DATE_DDMMYYYY: lambda values, _, __: parse_date_ddmmyyyy(values),
    Transform.PARSE_DATE_ISO: lambda values, _, __: parse_date_iso(values),
    Transform.GENERALISE_MONTH: lambda values, _, __: month_start(values),
    Transform.GENERALISE_YEAR: lambda values, _, __: year_start(values),
    Transform.POSTCODE_TO_DEPARTMENT: lambda values, _, __: postcode_to_department(values),
    Transform.SPLIT_PIPE: lambda values, _, __: normalise_pipe_list(values),
    Transform.DECIMAL: _decimal,
}


def _cast(values: pa.Array, column: Column) -> pa.Array:
    target = schema_to_pyarrow(column.type)
    if values.type == target:
        return values
    try:
        return values.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Slow path, taken only on failure: find the rows that do not cast, to name them.
    rows = []
    for index in range(len(values)):
        try:
            values.slice(index, 1).cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            rows.append(index)
    raise InvalidValuesError(column.name, rows or list(range(len(values))), f"not a valid {column.type}")


def apply_transforms(column: Column, values: pa.Array, pseudonymiser: Pseudonymiser) -> pa.Array:
    """The lake values of ``column`` for one batch of its raw column."""
    if column.source is None:
        raise TypeError(f"column {column.name!r} has no raw source; the pipeline fills it")
    try:
        for step in column.transforms:
            values = STEPS[step](values, column, pseudonymiser)
        return _cast(values, column)
    except InvalidValuesError as exc:
        raise InvalidValuesError(f"{column.source} -> {column.name}", exc.rows, exc.reason) from exc
