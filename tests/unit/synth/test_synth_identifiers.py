"""Check digits: each rule has a value it accepts and inputs it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from santelake.synth import nir_key
from santelake.synth.identifiers import ean13, finess_numbers, luhn_keys, rpps_numbers, shuffle


def test_nir_key_of_the_published_example() -> None:
    # INSEE's worked example: 2 55 08 14 168 025, key 38.
    assert nir_key("2550814168025") == "38"


def test_nir_key_is_zero_padded() -> None:
    body = next(b for b in range(1_000_000_000_000, 1_000_000_001_000) if 97 - b % 97 < 10)
    assert len(nir_key(str(body))) == 2
    assert nir_key(str(body)).startswith("0")


@pytest.mark.parametrize("body", ["255081416802", "25508141680251", "2A50814168025", "", "2550814168O25"])
def test_nir_key_refuses_what_is_not_13_digits(body: str) -> None:
    with pytest.raises(ValueError, match="13 digits"):
        nir_key(body)


def test_luhn_key_of_the_textbook_example() -> None:
    assert luhn_keys(np.array([7992739871], dtype=np.int64), 10).tolist() == [3]


def test_finess_and_rpps_numbers_carry_a_valid_luhn_key() -> None:
    finess = finess_numbers(np.array([75, 1], dtype=np.int64), np.array([0, 469], dtype=np.int64))
    rpps = rpps_numbers(np.array([0, 56_399], dtype=np.int64))
    for number, width in [*((n, 9) for n in finess.tolist()), *((n, 11) for n in rpps.tolist())]:
        assert len(f"{number:0{width}d}") == width
        assert luhn_keys(np.array([number // 10], dtype=np.int64), width - 1)[0] == number % 10
    assert f"{finess[0]:09d}".startswith("75")
    assert f"{finess[1]:09d}".startswith("01")
    assert all(f"{n:011d}".startswith("10") for n in rpps.tolist())


def test_ean13_of_a_known_barcode() -> None:
    assert ean13("400638133393") == "4006381333931"


def test_ean13_refuses_a_wrong_length() -> None:
    with pytest.raises(ValueError, match="12 digits"):
        ean13("3400930")


def test_shuffle_is_one_to_one() -> None:
    modulus = 999 * 999
    shuffled = shuffle(np.arange(modulus, dtype=np.int64), modulus)
    assert np.unique(shuffled).size == modulus
    assert shuffled.min() == 0
    assert shuffled.max() == modulus - 1


def test_shuffle_refuses_a_modulus_sharing_a_factor() -> None:
    with pytest.raises(ValueError, match="coprime"):
        shuffle(np.arange(3, dtype=np.int64), 7919 * 2)
