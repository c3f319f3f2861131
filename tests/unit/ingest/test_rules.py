import datetime as dt
from pathlib import Path

import great_expectations as gx
import pyarrow as pa

from santelake.ingest.expectations import suite
from santelake.ingest.rules import KnownPersons, table_rules
from santelake.schema import load_table_schema

SCHEMAS = Path(__file__).resolve().parents[3] / "iceberg_schemas"


def _stays() -> pa.Table:
    return pa.table({
        "stay_id": ["1", "2", "3", "4"],
        "person_id": ["a" * 64, "b" * 64, "c" * 64, None],
        "establishment_finess": ["750000001", "75000000X", "2A0000001", "750000001"],
        "admission_date": [dt.date(2023, 1, 2), dt.date(2023, 3, 5), dt.date(2023, 1, 1), dt.date(2023, 1, 1)],
        "discharge_date": [dt.date(2023, 1, 4), dt.date(2023, 3, 1), dt.date(2023, 1, 1), dt.date(2023, 1, 1)],
        "main_diagnosis": ["I210", "I21.0", "Z00", "I10"],
        "associated_diagnoses": [None, "E119|I10", "E11|x", None],
        "drg_code": ["05M092", "05M092", "05M092", "05M092"],
    })


def _broken(rules: list, table: pa.Table) -> dict[str, list[int]]:  # type: ignore[type-arg]
    out: dict[str, list[int]] = {}
    for rule in rules:
        rows = [i for i, bad in enumerate(rule.violations(table).to_pylist()) if bad]
        if rows:
            out[rule.id] = rows
    return out


def test_hospital_stay_rules_find_each_fault() -> None:
    declared = load_table_schema(SCHEMAS / "snds" / "hospital_stays.yaml")
    persons = KnownPersons(pa.array(["a" * 64, "c" * 64]))
    broken = _broken(table_rules(declared, persons), _stays())
    assert broken == {
        "person_id.not_null": [3],
        "establishment_finess.FINESS": [1],
        "main_diagnosis.ICD-10": [1],
        "associated_diagnoses.ICD-10": [2],
        "admission_date<=discharge_date": [1],
        "person_id.known": [1, 3],
    }


def test_known_persons_read_dictionary_encoded_pseudonyms_alike() -> None:
    persons = KnownPersons(pa.array(["a" * 64, "c" * 64, "e" * 64]))
    pseudonyms = pa.array(["c" * 64, "b" * 64, None, "c" * 64, "e" * 64, "f" * 64])

    plain = persons.unknown(pseudonyms).to_pylist()

    assert plain == [False, True, True, False, False, True]
    assert persons.unknown(pa.chunked_array([pseudonyms.dictionary_encode()])).to_pylist() == plain


def test_suite_has_an_expectation_for_every_rule_but_the_known_person() -> None:
    declared = load_table_schema(SCHEMAS / "snds" / "hospital_stays.yaml")
    rules = table_rules(declared, KnownPersons(pa.array(["a" * 64])))
    gx.get_context(mode="ephemeral")
    expectations = suite(gx, declared, rules).expectations
    assert len(expectations) == len(rules)  # the table-columns one replaces person_id.known
    kinds = {type(e).__name__ for e in expectations}
    assert {"ExpectColumnValuesToNotBeNull", "ExpectColumnValuesToMatchRegex",
            "ExpectColumnPairValuesAToBeGreaterThanB", "ExpectTableColumnsToMatchSet"} <= kinds


def test_claim_amounts_an_ordinary_line_and_a_regularisation_line() -> None:
    from decimal import Decimal

    from santelake.ingest.rules import claim_amounts

    money = pa.decimal128(12, 2)
    rows = pa.table({
        "claim_id": ["a", "b", "c", "d", "e", "f", "g", "h"],
        "amount_paid": pa.array([Decimal(v) for v in ("25", "25", "-25", "-25", "-25", "-10", "25", "-25")], money),
        "amount_reimbursed": pa.array([Decimal(v) for v in ("16.5", "30", "-16.5", "-30", "5", "-5", "-1", "-16.5")],
                                      money),
        "corrected_claim_id": [None, None, "a", "a", "a", "a", None, "h"],
    })
    # a: ordinary; b: reimbursed more than paid; c: a correction of a; d: refunds more than paid back;
    # e: a correction with a positive amount; f: a partial correction; g: a negative ordinary line;
    # h: a line correcting itself.
    assert claim_amounts().violations(rows).to_pylist() == [False, True, False, True, True, False, True, True]


def test_with_no_person_known_every_person_is_unknown() -> None:
    # A care extract loaded before any beneficiary: every row refused by the rule, no crash.
    unknown = KnownPersons(pa.array([], pa.string())).unknown(pa.array(["a" * 64, None, "a" * 64]))
    assert unknown.to_pylist() == [True, True, True]
