"""Coarser values for quasi-identifiers: a month instead of a day, a department instead of a postcode."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from santelake.pseudonymise.errors import InvalidValuesError
from santelake.pseudonymise.parse import clean_text, invalid_rows

# Metropolitan departments 01-95 (Corsica is 20 in postcodes), overseas 97x and 98x.
_POSTCODE = r"^(?:0[1-9]|[1-8][0-9]|9[0-5]|9[78])[0-9]{3}$"
# Postcodes 20000-20199 are in Corse-du-Sud (2A), 20200 and above in Haute-Corse (2B).
_FIRST_HAUTE_CORSE_POSTCODE = "20200"


def _dates(values: pa.Array) -> pa.Array:
    return values if pa.types.is_date32(values.type) else values.cast(pa.date32())


def month_start(values: pa.Array) -> pa.Array:
    """Each date replaced by the first day of its month."""
    return pc.floor_temporal(_dates(values), unit="month")


def year_start(values: pa.Array) -> pa.Array:
    """Each date replaced by the first of January of its year."""
    return pc.floor_temporal(_dates(values), unit="year")


def postcode_to_department(values: pa.Array) -> pa.Array:
    """French postcodes to departments: ``75011`` -> ``75``, ``20090`` -> ``2A``, ``97411`` -> ``974``."""
    text = clean_text(values)
    rows = invalid_rows(text, pc.match_substring_regex(text, _POSTCODE))
    if rows:
        raise InvalidValuesError(
            "postcode", rows, "not a French postcode (5 digits, department 01-95, 97x or 98x)"
        )
    two = pc.utf8_slice_codeunits(text, 0, 2)
    corsica = pc.if_else(pc.less(text, _FIRST_HAUTE_CORSE_POSTCODE), "2A", "2B")
    overseas = pc.is_in(two, value_set=pa.array(["97", "98"]))
    return pc.if_else(
        overseas,
        pc.utf8_slice_codeunits(text, 0, 3),
        pc.if_else(pc.equal(two, "20"), corsica, two),
    )
