"""Generalisation of quasi-identifiers: month and year starts, postcode to department."""

from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa
import pytest

from santelake.pseudonymise import InvalidValuesError, month_start, postcode_to_department, year_start


def test_month_start() -> None:
    values = pa.array([date(1980, 2, 29), None, date(1999, 12, 31), date(2024, 1, 1)])

    assert month_start(values).to_pylist() == [date(1980, 2, 1), None, date(1999, 12, 1), date(2024, 1, 1)]


def test_year_start() -> None:
    values = pa.array([date(1980, 2, 29), None, date(1999, 12, 31)])

    assert year_start(values).to_pylist() == [date(1980, 1, 1), None, date(1999, 1, 1)]


def test_timestamps_become_dates() -> None:
    values = pa.array([datetime(2020, 7, 14, 23, 59)])

    assert month_start(values).to_pylist() == [date(2020, 7, 1)]


@pytest.mark.parametrize(
    ("postcode", "department"),
    [
        ("75011", "75"),
        ("01000", "01"),
        ("95000", "95"),
        ("20000", "2A"),
        ("20090", "2A"),
        ("20199", "2A"),
        ("20200", "2B"),
        ("20600", "2B"),
        ("97100", "971"),
        ("97411", "974"),
        ("97600", "976"),
        ("98800", "988"),
        (" 69003 ", "69"),
    ],
)
def test_postcode_to_department(postcode: str, department: str) -> None:
    assert postcode_to_department(pa.array([postcode])).to_pylist() == [department]


def test_missing_postcodes_stay_null() -> None:
    assert postcode_to_department(pa.array([None, "", "  "])).to_pylist() == [None, None, None]


def test_invalid_postcodes_are_reported_by_row_without_their_value() -> None:
    values = pa.array(["75011", "7501", "00100", None, "99000", "ABCDE", "96000"])

    with pytest.raises(InvalidValuesError) as caught:
        postcode_to_department(values)

    assert caught.value.rows == (1, 2, 4, 5, 6)
    assert "7501" not in str(caught.value)
