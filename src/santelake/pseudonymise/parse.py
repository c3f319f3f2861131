"""Raw text to typed values: dates, decimals, '|'-joined code lists.

Every function takes and returns a pyarrow array of one batch. Blank text counts as
missing and gives null; a value that is present but wrong raises InvalidValuesError with
its row index in the batch, so the caller can quarantine exactly those rows.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from santelake.pseudonymise.errors import InvalidValuesError


def clean_text(values: pa.Array) -> pa.Array:
    """Strings without surrounding whitespace, blank ones turned into null."""
    text = pc.utf8_trim_whitespace(values.cast(pa.string()))
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def invalid_rows(text: pa.Array, valid: pa.Array) -> list[int]:
    """Indices of values present in ``text`` but not ``valid``."""
    bad = pc.and_(pc.is_valid(text), pc.invert(pc.fill_null(valid, False)))
    return [int(index) for index in pc.indices_nonzero(bad).to_pylist()]


def _parse_dates(values: pa.Array, pattern: str, strptime_format: str, form: str) -> pa.Array:
    if pa.types.is_date32(values.type):
        return values
    if pa.types.is_temporal(values.type):
        return values.cast(pa.date32())
    text = clean_text(values)
    shaped = pc.match_substring_regex(text, pattern)
    if pc.all(pc.fill_null(shaped, True)).as_py():
        # Fast path: Arrow's ISO date cast refuses impossible dates (31 February) by itself.
        iso = text if form == "YYYY-MM-DD" else pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(text, 4, 8), pc.utf8_slice_codeunits(text, 2, 4),
            pc.utf8_slice_codeunits(text, 0, 2), "-")
        try:
            return iso.cast(pa.date32())
        except pa.ArrowInvalid:
            pass
    parsed = pc.strptime(text, format=strptime_format, unit="s", error_is_null=True)
    # Arrow's strptime rolls impossible dates over (31 February -> 2 March); a round trip catches them.
    valid = pc.and_(shaped, pc.equal(pc.strftime(parsed, format=strptime_format), text))
    rows = invalid_rows(text, valid)
    if rows:
        raise InvalidValuesError(f"{form} dates", rows, f"not a real calendar date written {form}")
    return parsed.cast(pa.date32())


def parse_date_ddmmyyyy(values: pa.Array) -> pa.Array:
    """``DDMMYYYY`` text (``31011980``) to dates."""
    return _parse_dates(values, r"^[0-9]{8}$", "%d%m%Y", "DDMMYYYY")


def parse_date_iso(values: pa.Array) -> pa.Array:
    """``YYYY-MM-DD`` text to dates."""
    return _parse_dates(values, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "%Y-%m-%d", "YYYY-MM-DD")


def parse_decimal(values: pa.Array, precision: int, scale: int) -> pa.Array:
    """Decimal text (``12.30``, or ``12,30`` as French files write it) to decimal(precision, scale)."""
    target = pa.decimal128(precision, scale)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return values.cast(target)
    text = pc.replace_substring(clean_text(values), ",", ".")
    fraction = f"(?:\\.[0-9]{{1,{scale}}})?" if scale else ""
    valid = pc.match_substring_regex(text, f"^-?[0-9]{{1,{precision - scale}}}{fraction}$")
    rows = invalid_rows(text, valid)
    if rows:
        raise InvalidValuesError(
            "decimal", rows, f"not a number with at most {precision - scale} digits and {scale} decimals"
        )
    return text.cast(target)


def normalise_pipe_list(values: pa.Array) -> pa.Array:
    """``'|'``-joined codes with spaces and empty items removed (``' E119||I10 '`` -> ``'E119|I10'``)."""
    text = clean_text(values)
    text = pc.replace_substring_regex(text, r"\s*\|\s*", "|")
    text = pc.replace_substring_regex(text, r"\|+", "|")
    return clean_text(pc.utf8_trim(text, characters="|"))
