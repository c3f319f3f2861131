"""A declared column's transform steps applied to a raw batch, using the repository's table files."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from santelake.pseudonymise import InvalidValuesError, Pseudonymiser, apply_transforms
from santelake.pseudonymise.transforms import STEPS
from santelake.schema import TableSchema, Transform, load_table_schema

SNDS = Path(__file__).resolve().parents[3] / "iceberg_schemas" / "snds"
NIR = "185057800608436"


@pytest.fixture
def pseudonymiser() -> Pseudonymiser:
    return Pseudonymiser.from_key(bytes(range(32)))


@pytest.fixture(scope="module")
def beneficiaries() -> TableSchema:
    return load_table_schema(SNDS / "beneficiaries.yaml")


def test_every_transform_a_lake_column_may_take_has_a_step() -> None:
    assert set(STEPS) == set(Transform) - {Transform.DROP}


def test_beneficiaries_batch(beneficiaries: TableSchema, pseudonymiser: Pseudonymiser) -> None:
    raw = {
        "BEN_NIR": pa.array([NIR, "1850578006084"]),
        "BEN_NAI_DTE": pa.array(["15051985", "15051985"]),
        "BEN_SEX_COD": pa.array(["1", "1"]),
        "BEN_CP": pa.array(["20090", "97411"]),
        "BEN_RNG_GEM": pa.array(["1", "2"]),
        "BEN_DCD_DTE": pa.array(["", "03022020"]),
    }

    lake = {
        column.name: apply_transforms(column, raw[column.source], pseudonymiser).to_pylist()
        for column in beneficiaries.lake_columns
        if column.source is not None
    }

    person = pseudonymiser.pseudonymise(NIR)
    assert lake == {
        "person_id": [person, person],
        "birth_month": [date(1985, 5, 1), date(1985, 5, 1)],
        "sex_code": [1, 1],
        "residence_department": ["2A", "974"],
        "twin_rank": [1, 2],
        "death_month": [None, date(2020, 2, 1)],
    }


def test_claims_amounts_and_dates(pseudonymiser: Pseudonymiser) -> None:
    claims = load_table_schema(SNDS / "outpatient_claims.yaml")

    amounts = apply_transforms(claims.column("amount_paid"), pa.array(["25.00", "7,5"]), pseudonymiser)
    dates = apply_transforms(claims.column("care_date"), pa.array(["2024-03-01"]), pseudonymiser)

    assert amounts.to_pylist() == [Decimal("25.00"), Decimal("7.50")]
    assert dates.to_pylist() == [date(2024, 3, 1)]


def test_error_names_raw_and_lake_column(beneficiaries: TableSchema, pseudonymiser: Pseudonymiser) -> None:
    with pytest.raises(
        InvalidValuesError, match=r"^BEN_NAI_DTE -> birth_month: 1 invalid value\(s\) at row\(s\) 1:"
    ):
        apply_transforms(
            beneficiaries.column("birth_month"), pa.array(["01011990", "31021990"]), pseudonymiser
        )


def test_values_that_do_not_cast_are_named_by_row(
    beneficiaries: TableSchema, pseudonymiser: Pseudonymiser
) -> None:
    with pytest.raises(InvalidValuesError) as caught:
        apply_transforms(
            beneficiaries.column("sex_code"), pa.array(["1", "x", "2", "9999999999"]), pseudonymiser
        )

    assert caught.value.rows == (1, 3)
    assert caught.value.what == "BEN_SEX_COD -> sex_code"
