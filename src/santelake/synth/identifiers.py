"""Check digits of French health identifiers: NIR key, CIP13 (EAN-13) and Luhn keys."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Int64s = npt.NDArray[np.int64]

NIR_MODULUS = 97
_SHUFFLE_MULTIPLIER = 7919


def nir_keys(bodies: Int64s) -> Int64s:
    """Control keys of 13-digit NIR bodies held as integers: 97 - (body mod 97)."""
    return NIR_MODULUS - bodies % NIR_MODULUS


def nir_key(thirteen_digits: str) -> str:
    """The two-digit control key of a NIR body, e.g. ``nir_key("2550814168025") == "38"``.

    Corsican bodies (department 2A/2B) are not accepted: the generator never writes them.
    """
    if len(thirteen_digits) != 13 or not thirteen_digits.isdigit():
        raise ValueError(f"a NIR body is 13 digits (sex, year, month, place, order); got {thirteen_digits!r}")
    key = nir_keys(np.array([int(thirteen_digits)], dtype=np.int64))[0]
    return f"{key:02d}"


def digit_matrix(values: Int64s, width: int) -> npt.NDArray[np.uint8]:
    """The decimal digits of each value, most significant first, zero padded to ``width``."""
    digits = np.empty((len(values), width), dtype=np.uint8)
    rest = values
    for position in range(width - 1, -1, -1):
        rest, digits[:, position] = np.divmod(rest, 10)
    return digits


def luhn_keys(bodies: Int64s, width: int) -> Int64s:
    """Luhn check digits of ``width``-digit bodies (the key FINESS and RPPS numbers end with)."""
    digits = digit_matrix(bodies, width).astype(np.int64)
    # Doubling starts at the rightmost body digit, the one next to the key.
    doubled = digits[:, ::-1][:, 0::2] * 2
    total: Int64s = (doubled - 9 * (doubled > 9)).sum(axis=1) + digits[:, ::-1][:, 1::2].sum(axis=1)
    return (10 - total % 10) % 10


def ean13(twelve_digits: str) -> str:
    """The 12 digits followed by their EAN-13 check digit (the key of a CIP13 code)."""
    if len(twelve_digits) != 12 or not twelve_digits.isdigit():
        raise ValueError(f"an EAN-13 body is 12 digits; got {twelve_digits!r}")
    total = sum(int(d) * (3 if position % 2 else 1) for position, d in enumerate(twelve_digits))
    return f"{twelve_digits}{(10 - total % 10) % 10}"


def shuffle(numbers: Int64s, modulus: int) -> Int64s:
    """A one-to-one map of [0, modulus) onto itself that makes neighbours look unrelated."""
    # Multiplying by a number coprime with the modulus is a bijection modulo it.
    if math.gcd(_SHUFFLE_MULTIPLIER, modulus) != 1:
        raise ValueError(f"{_SHUFFLE_MULTIPLIER} is not coprime with {modulus}")
    return numbers * _SHUFFLE_MULTIPLIER % modulus


def finess_numbers(department: Int64s, establishment: Int64s) -> Int64s:
    """Nine-digit FINESS-shaped numbers: department, six digits, Luhn key.

    ``establishment`` numbers the establishments of the country, each one once.
    """
    body = department * 1_000_000 + 100_000 + shuffle(establishment, 900_000)
    return body * 10 + luhn_keys(body, 8)


def rpps_numbers(practitioner: Int64s) -> Int64s:
    """Eleven-digit RPPS-shaped numbers: 10, eight digits, Luhn key; one per practitioner number."""
    body = 1_000_000_000 + shuffle(practitioner, 100_000_000)
    return body * 10 + luhn_keys(body, 10)
