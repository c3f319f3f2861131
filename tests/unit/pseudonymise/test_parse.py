"""Raw text to typed values: impossible dates and malformed numbers are named by row."""

from __future__ import annotations

import random
import re
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pytest

from santelake.pseudonymise import (
    InvalidValuesError,
    normalise_pipe_list,
    parse_date_ddmmyyyy,
    parse_date_iso,
    parse_decimal,
)
from santelake.pseudonymise.parse import _full_scale_decimals, clean_text


def test_ddmmyyyy_dates() -> None:
    values = pa.array(["31011980", "29022000", None, "", " 01121999 "])

    assert parse_date_ddmmyyyy(values).to_pylist() == [
        date(1980, 1, 31),
        date(2000, 2, 29),
        None,
        None,
        date(1999, 12, 1),
    ]


@pytest.mark.parametrize(
    "impossible",
    ["31021980", "29021900", "00011990", "01131990", "32011990", "1011990", "0101199O", "01-01-1990"],
)
def test_impossible_ddmmyyyy_date_names_its_row(impossible: str) -> None:
    values = pa.array(["01011990", None, impossible])

    with pytest.raises(InvalidValuesError) as caught:
        parse_date_ddmmyyyy(values)

    assert caught.value.rows == (2,)
    assert "row(s) 2:" in str(caught.value)
    assert impossible not in str(caught.value)


def test_every_bad_row_is_listed() -> None:
    values = pa.array(["31021980"] * 12 + ["01011990"])

    with pytest.raises(InvalidValuesError) as caught:
        parse_date_ddmmyyyy(values)

    assert caught.value.rows == tuple(range(12))
    assert "12 invalid value(s) at row(s) 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 2 more" in str(caught.value)


def test_typed_dates_pass_through() -> None:
    values = pa.array([date(2020, 1, 2), None])

    assert parse_date_ddmmyyyy(values).to_pylist() == [date(2020, 1, 2), None]


def test_iso_dates() -> None:
    assert parse_date_iso(pa.array(["2024-02-29", None])).to_pylist() == [date(2024, 2, 29), None]
    with pytest.raises(InvalidValuesError) as caught:
        parse_date_iso(pa.array(["2023-02-29", "2023-2-1", "2023-01-01"]))
    assert caught.value.rows == (0, 1)


def test_decimals_with_point_or_comma() -> None:
    values = pa.array(["12.30", "4,5", "-1", "0.07", None, ""])

    assert parse_decimal(values, 12, 2).to_pylist() == [
        Decimal("12.30"),
        Decimal("4.50"),
        Decimal("-1.00"),
        Decimal("0.07"),
        None,
        None,
    ]


def test_malformed_decimals_name_their_rows() -> None:
    values = pa.array(["1.234", "12.3", "abc", "1e3", "12345678901"])

    with pytest.raises(InvalidValuesError) as caught:
        parse_decimal(values, 12, 2)

    assert caught.value.rows == (0, 2, 3, 4)


def test_pipe_list_is_normalised() -> None:
    values = pa.array(["E119|I10", " E119 || I10 |", "", "|", None, "I210"])

    assert normalise_pipe_list(values).to_pylist() == ["E119|I10", "E119|I10", None, None, None, "I210"]


_DECIMAL_FORM = re.compile(r"^-?[0-9]{1,10}(?:\.[0-9]{1,2})?$")
_EDGE_DECIMALS = ["5.", ".5", "1.2.3", "--1", "5-", "-", ".", "1-2", "-.5", "-0.5", "12.30", "7", "1.234", "1..5",
                  "1.-5", "-5.", "1234567890.99", "-1234567890.99", "12345678901", "12345678901.00", "1/2", "0",
                  "+5", "1e3", " 5", "5 ", "0.1", "1.2.", "..5", "-1"]


@pytest.mark.parametrize("value", _EDGE_DECIMALS)
def test_fast_and_careful_decimal_paths_agree(value: str) -> None:
    """A batch of plain decimals takes a fast path; a comma anywhere sends it the careful way."""
    for batch in (pa.array([value, None, "1.00"]), pa.array(["1,00", value]), pa.array(["x", value]).slice(1)):
        try:
            parsed: object = parse_decimal(batch, 12, 2).to_pylist()
        except InvalidValuesError as exc:
            parsed = exc.rows
        if _DECIMAL_FORM.match(value.strip()):
            assert isinstance(parsed, list) and Decimal(value.strip()) in parsed
        else:
            assert parsed == (batch.to_pylist().index(value),)


def test_fast_decimals_are_exact() -> None:
    rng = random.Random(7)
    values = [f"{rng.choice(['', '-'])}{rng.randrange(10 ** rng.randrange(1, 11))}"
              + rng.choice(["", f".{rng.randrange(10)}", f".{rng.randrange(100):02d}"]) for _ in range(50_000)]
    assert parse_decimal(pa.array(values), 12, 2).to_pylist() == [Decimal(v).quantize(Decimal("0.01")) for v in values]


_FULL_SCALE = re.compile(r"^-?[0-9]{1,10}\.[0-9]{2}$")


def test_the_full_scale_check_takes_only_what_the_pattern_takes() -> None:
    """Random text near the decimal form: the byte check says yes exactly for ``-?d{1,10}.dd``."""
    rng = random.Random(11)
    alphabet = "0123456789" * 4 + "..--/ ,+e\u00e9"
    taken = 0
    for _ in range(20_000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 16)))
        if rng.random() < 0.3:  # many in the form, so the yes side is tried as hard as the no
            value = f"{rng.choice(['', '-'])}{rng.randrange(10 ** rng.randrange(1, 12))}.{rng.randrange(100):02d}"
        expected = bool(_FULL_SCALE.match(value))
        for batch in (pa.array([value]), pa.array([value, None, "1.00"]), pa.array(["1.00", value]).slice(1)):
            assert _full_scale_decimals(batch, 12, 2) is expected, (value, batch)
        taken += expected
    assert taken > 3_000


def test_full_scale_decimals_are_exact() -> None:
    rng = random.Random(5)
    values = [f"{rng.choice(['', '-'])}{rng.randrange(10 ** rng.randrange(1, 11))}.{rng.randrange(100):02d}"
              for _ in range(50_000)]
    batch = pa.array(values)
    assert _full_scale_decimals(batch, 12, 2)
    assert parse_decimal(batch, 12, 2).to_pylist() == [Decimal(v) for v in values]


@pytest.mark.parametrize("value", ["a", " a", "a ", "a\u00a0", "", "a b", "\u00e9t\u00e9"])
def test_clean_text_fast_path_changes_nothing_it_should_clean(value: str) -> None:
    expected = value.strip() or None
    assert clean_text(pa.array([value, None, "x"])).to_pylist() == [expected, None, "x"]
