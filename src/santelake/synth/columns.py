"""Turning drawn numbers into Arrow columns without a Python loop per row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from santelake.synth.identifiers import digit_matrix
from santelake.synth.sources import SourceTable

Int64s = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

ROWS_PER_BLOCK_LIMIT = 1_000_000
"""Row ids are the block number followed by six digits of row number within the block."""
_BLOCK_DIGITS = 7


def fixed_digits(values: Int64s, width: int) -> pa.Array:
    """Zero-padded decimal strings of exactly ``width`` characters."""
    characters = digit_matrix(values, width) + np.uint8(ord("0"))
    offsets = np.arange(0, (len(values) + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(characters)])


def row_ids(block: int, count: int) -> pa.Array:
    """Ids unique within a table: 13 digits, the block then the row's rank in it."""
    if count > ROWS_PER_BLOCK_LIMIT:
        raise ValueError(f"block {block} has {count} rows; row ids hold at most {ROWS_PER_BLOCK_LIMIT}")
    first = block * ROWS_PER_BLOCK_LIMIT
    return fixed_digits(np.arange(first, first + count, dtype=np.int64), _BLOCK_DIGITS + 6)


def days(values: Int64s, missing: Bools | None = None) -> pa.Array:
    """Days since 1970-01-01 as ``date32``, null where ``missing``."""
    return pa.array(values.astype(np.int32), type=pa.date32(), mask=missing)


def amounts(cents: Int64s) -> pa.Array:
    """Euro amounts with two decimals, built straight from integer cents."""
    # decimal128 stores each value as a 128-bit little-endian two's-complement integer of
    # cents: low word the cents, high word the sign (a regularisation line is negative).
    words = np.zeros((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = np.where(np.asarray(cents) < 0, -1, 0)
    return pa.Array.from_buffers(pa.decimal128(9, 2), len(cents), [None, pa.py_buffer(words)])


def integers(values: Int64s) -> pa.Array:
    return pa.array(values.astype(np.int32), type=pa.int32())


def strings(values: Sequence[str]) -> pa.Array:
    return pa.array(values, type=pa.string())


def pick(choices: pa.Array, indices: Int64s) -> pa.Array:
    """``choices[i]`` for each index."""
    return choices.take(pa.array(indices))


def assemble(source: SourceTable, columns: Mapping[str, pa.Array]) -> pa.Table:
    """The table in the contract's column order and types; a missing or extra column is a bug."""
    if set(columns) != set(source.column_names):
        raise ValueError(
            f"{source.name}: generated columns {sorted(columns)} differ from the contract {sorted(source.column_names)}"
        )
    schema = source.arrow_schema
    return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)


def plain_claims(ids: np.ndarray, claim_ids: pa.Array, persons: pa.Array) -> pa.Table:
    """Lake rows of ``snds.outpatient_claims`` made straight, for benches filling a large table.

    Row ``i`` is claim ``claim_ids[i]`` of ``persons[i]``, cared for on a day cycling over
    about four years by ``ids[i]``; every act, specialty and amount the same.
    """
    n = len(ids)
    return pa.table({
        "claim_id": claim_ids,
        "person_id": persons,
        "care_date": pa.array((19000 + ids % 1500).astype("int32"), pa.date32()),
        "act_code": pa.array(np.full(n, 1111, dtype="int32")),
        "prescriber_specialty": pa.array(np.ones(n, dtype="int32")),
        "performer_specialty": pa.array(np.ones(n, dtype="int32")),
        "amount_paid": amounts(np.full(n, 2500, dtype=np.int64)),
        "amount_reimbursed": amounts(np.full(n, 1650, dtype=np.int64)),
        "corrected_claim_id": pa.nulls(n, pa.string()),
    })
