"""Pseudonyms: stable per person and key, one per person whatever the NIR's form, nulls kept."""

from __future__ import annotations

import pyarrow as pa
import pytest

from santelake.errors import ConfigError
from santelake.pseudonymise import Pseudonymiser, key_id_of, normalise_identifier

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NIR_BODY = "1850578006084"
NIR = NIR_BODY + "36"


@pytest.fixture
def pseudonymiser() -> Pseudonymiser:
    return Pseudonymiser(KEY, key_id_of(KEY))


def test_known_value(pseudonymiser: Pseudonymiser) -> None:
    # Computed independently with:
    #   printf 1850578006084 | openssl dgst -sha256 -mac HMAC -macopt hexkey:000102...1f
    # A change here changes every pseudonym in the lake: it needs a re-keying, not a test update.
    assert (
        pseudonymiser.pseudonymise(NIR) == "8e7ebb51b0db147c43204e3da09ad9a584cb1cecd8e863609a0eea3ec547e2e6"
    )


def test_same_input_same_pseudonym(pseudonymiser: Pseudonymiser) -> None:
    assert pseudonymiser.pseudonymise(NIR) == Pseudonymiser.from_key(KEY).pseudonymise(NIR)


def test_different_key_different_pseudonym(pseudonymiser: Pseudonymiser) -> None:
    assert pseudonymiser.pseudonymise(NIR) != Pseudonymiser.from_key(OTHER_KEY).pseudonymise(NIR)


def test_different_people_different_pseudonyms(pseudonymiser: Pseudonymiser) -> None:
    assert pseudonymiser.pseudonymise(NIR) != pseudonymiser.pseudonymise("2850578006084")


@pytest.mark.parametrize("form", [NIR_BODY, NIR, "1 85 05 78 006 084 36", f" {NIR}\t", "1 85 05 78 006 084"])
def test_nir_with_or_without_control_key_or_spaces_is_one_person(
    pseudonymiser: Pseudonymiser, form: str
) -> None:
    assert pseudonymiser.pseudonymise(form) == pseudonymiser.pseudonymise(NIR_BODY)


def test_corsican_nir_keeps_its_letters() -> None:
    assert normalise_identifier("185052A00608436") == "185052A006084"
    assert normalise_identifier("185052a006084") == "185052A006084"
    assert normalise_identifier("185052B00608436") == normalise_identifier("185052B006084")


def test_other_identifiers_are_only_stripped_of_spaces() -> None:
    assert normalise_identifier(" ab 12 ") == "ab12"
    # Fourteen digits: not a NIR form, so nothing is cut off.
    assert normalise_identifier("12345678901234") == "12345678901234"


def test_blank_identifier_is_refused(pseudonymiser: Pseudonymiser) -> None:
    with pytest.raises(ValueError, match="blank identifier"):
        pseudonymiser.pseudonymise("  ")


def test_array_matches_scalar_and_keeps_nulls(pseudonymiser: Pseudonymiser) -> None:
    values = pa.array([NIR, None, NIR_BODY, "", "2850578006084", NIR])

    result = pseudonymiser.pseudonymise_array(values).to_pylist()

    expected = pseudonymiser.pseudonymise(NIR)
    assert result == [expected, None, expected, None, pseudonymiser.pseudonymise("2850578006084"), expected]


def test_dictionary_form_holds_the_same_pseudonyms_with_nulls_in_its_indices(pseudonymiser: Pseudonymiser) -> None:
    values = pa.array([NIR, None, NIR_BODY, "  ", "2850578006084", NIR])

    result = pseudonymiser.pseudonymise_dictionary(values)

    assert result.dictionary_decode().to_pylist() == pseudonymiser.pseudonymise_array(values).to_pylist()
    # The not-null rule reads the indices: a blank identifier must be null there.
    assert result.indices.is_null().to_pylist() == [False, True, False, True, False, False]
    assert len(result.dictionary.drop_null()) == 2, "each distinct person once"


def test_array_of_large_strings(pseudonymiser: Pseudonymiser) -> None:
    result = pseudonymiser.pseudonymise_array(pa.array([NIR], type=pa.large_string()))

    assert result.to_pylist() == [pseudonymiser.pseudonymise(NIR)]


def test_pseudonym_is_64_hex_characters(pseudonymiser: Pseudonymiser) -> None:
    pseudonym = pseudonymiser.pseudonymise(NIR)

    assert len(pseudonym) == 64 and int(pseudonym, 16) >= 0


def test_key_id_must_match_the_key() -> None:
    with pytest.raises(ConfigError, match="not the expected 000000000000"):
        Pseudonymiser(KEY, "000000000000")


def test_short_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="31 bytes; it needs at least 32"):
        Pseudonymiser.from_key(KEY[:31])


def test_repr_shows_the_key_id_only(pseudonymiser: Pseudonymiser) -> None:
    assert repr(pseudonymiser) == f"Pseudonymiser(key_id='{key_id_of(KEY)}')"
    assert KEY.hex() not in repr(pseudonymiser)
