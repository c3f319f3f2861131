"""What the extracts hold: the contract's columns, consistent persons, plausible values."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from santelake.synth import TABLES, SynthReport, nir_key
from santelake.synth.catalogue import Catalogue
from santelake.synth.identifiers import ean13, luhn_keys
from santelake.synth.reference import FEMALE, PERIOD_END, PERIOD_START, TELECONSULTATION_FROM, Eligible

CARE_TABLES = {
    "outpatient_claims": ("BEN_NIR", "EXE_SOI_DTD"),
    "pharmacy_dispensations": ("BEN_NIR", "EXE_SOI_DTD"),
    "hospital_stays": ("NIR_ANO", "ENT_DAT"),
    "gp_consultations": ("BEN_NIR", "CNS_DTE"),
}


def _values(table: pa.Table, column: str) -> list[Any]:
    values: list[Any] = table.column(column).to_pylist()
    return values


def test_files_have_the_contract_columns_in_order(report: SynthReport) -> None:
    for source in TABLES.values():
        path = report.out_dir / source.file_name
        if source.format == "csv":
            assert source.encoding and source.delimiter
            header = path.read_bytes().split(b"\n", 1)[0].decode(source.encoding)
            assert tuple(header.split(source.delimiter)) == source.column_names
        else:
            assert pq.read_schema(path).remove_metadata() == source.arrow_schema


def test_names_are_written_in_latin1(report: SynthReport) -> None:
    raw = (report.out_dir / TABLES["beneficiaries"].file_name).read_bytes()
    assert any(byte > 127 for byte in raw)
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("latin-1")
    assert all(letter in text for letter in "éèçï")


def test_every_care_row_cites_an_existing_beneficiary(extracts: dict[str, pa.Table]) -> None:
    known = set(_values(extracts["beneficiaries"], "BEN_NIR"))
    for name, (nir_column, _) in CARE_TABLES.items():
        cited = set(_values(extracts[name], nir_column))
        assert cited, name
        assert cited <= known, name


def test_nirs_are_unique_valid_and_agree_with_the_person(report: SynthReport, extracts: dict[str, pa.Table]) -> None:
    people = extracts["beneficiaries"].to_pylist()
    assert len(people) == report.scale
    assert len({p["BEN_NIR"] for p in people}) == report.scale
    for person in people:
        nir = person["BEN_NIR"]
        assert re.fullmatch(r"[12]\d{14}", nir), nir
        assert nir_key(nir[:13]) == nir[13:]
        born: date = person["BEN_NAI_DTE"]
        assert nir[0] == str(person["BEN_SEX_COD"])
        assert nir[1:5] == f"{born.year % 100:02d}{born.month:02d}"
        assert nir[5:7] == person["BEN_CP"][:2]
        assert re.fullmatch(r"\d{5}", person["BEN_CP"])
        assert person["BEN_RNG_GEM"] in (1, 2)
        assert PERIOD_END.year - 101 <= born.year
        assert born <= PERIOD_END
        died = person["BEN_DCD_DTE"]
        assert died is None or max(born, PERIOD_START) <= died <= PERIOD_END


def test_population_looks_like_a_population(report: SynthReport, extracts: dict[str, pa.Table]) -> None:
    people = extracts["beneficiaries"]
    ages = np.array([PERIOD_END.year - d.year for d in _values(people, "BEN_NAI_DTE")])
    assert 35 <= ages.mean() <= 48
    assert (ages < 18).mean() > 0.15
    assert (ages >= 80).mean() > 0.02
    assert 0.45 <= np.mean(np.array(_values(people, "BEN_SEX_COD")) == 1) <= 0.52
    assert 0.005 <= 1 - pc.mean(pc.is_null(people.column("BEN_DCD_DTE"))).as_py() <= 0.1
    assert sum(_values(people, "BEN_RNG_GEM")) > report.scale  # a few twins


def test_care_happens_in_the_period_while_alive(extracts: dict[str, pa.Table]) -> None:
    lifetime = {
        p["BEN_NIR"]: (max(p["BEN_NAI_DTE"], PERIOD_START), p["BEN_DCD_DTE"] or PERIOD_END)
        for p in extracts["beneficiaries"].to_pylist()
    }
    for name, (nir_column, day_column) in CARE_TABLES.items():
        for nir, day in zip(_values(extracts[name], nir_column), _values(extracts[name], day_column), strict=True):
            first, last = lifetime[nir]
            assert first <= day <= last, (name, nir, day)


def test_volumes_scale_with_persons(report: SynthReport) -> None:
    per_person = {f.table: f.rows / report.scale for f in report.files}
    expected = {"outpatient_claims": 10, "pharmacy_dispensations": 6, "hospital_stays": 0.3, "gp_consultations": 4}
    for table, mean in expected.items():
        assert mean * 0.8 <= per_person[table] <= mean * 1.2, table


def test_row_ids_are_unique(extracts: dict[str, pa.Table]) -> None:
    for name, column in [
        ("outpatient_claims", "FLX_ID"),
        ("pharmacy_dispensations", "DSP_ID"),
        ("hospital_stays", "RSA_NUM"),
        ("gp_consultations", "CNS_ID"),
    ]:
        ids = _values(extracts[name], column)
        assert len(set(ids)) == len(ids), name


def test_stays_are_coded_like_pmsi(extracts: dict[str, pa.Table]) -> None:
    for stay in extracts["hospital_stays"].to_pylist():
        assert stay["ENT_DAT"] <= stay["SOR_DAT"]
        assert re.fullmatch(r"[A-Z]\d{2,3}", stay["DGN_PAL"])
        associated = stay["DGN_ASS"].split("|") if stay["DGN_ASS"] else []
        assert len(associated) <= 4
        assert len(set(associated)) == len(associated)
        assert stay["DGN_PAL"] not in associated
        assert all(re.fullmatch(r"[A-Z]\d{2,3}", code) for code in associated)
        assert re.fullmatch(r"\d{2}[CMKZ]\d{2}[1-4A-D]", stay["GRG_GHM"])
        finess = stay["ETA_NUM"]
        assert re.fullmatch(r"\d{9}", finess)
        assert luhn_keys(np.array([int(finess[:8])], dtype=np.int64), 8)[0] == int(finess[8])
    stays = extracts["hospital_stays"]
    assert pc.any(pc.not_equal(stays.column("DGN_ASS"), "")).as_py()
    assert pc.any(pc.less(stays.column("ENT_DAT"), stays.column("SOR_DAT"))).as_py()


def test_deliveries_only_for_women_of_childbearing_age(extracts: dict[str, pa.Table]) -> None:
    people = {p["BEN_NIR"]: p for p in extracts["beneficiaries"].to_pylist()}
    for stay in extracts["hospital_stays"].to_pylist():
        if stay["DGN_PAL"].startswith("O8"):
            mother = people[stay["NIR_ANO"]]
            assert mother["BEN_SEX_COD"] == FEMALE
            assert 16 <= (stay["ENT_DAT"] - mother["BEN_NAI_DTE"]).days / 365.25 < 46


def test_each_drug_has_one_cip13_and_one_atc(extracts: dict[str, pa.Table]) -> None:
    drugs = extracts["pharmacy_dispensations"]
    atc_by_cip: dict[str, set[str]] = defaultdict(set)
    for cip, atc in zip(_values(drugs, "PHA_CIP_C13"), _values(drugs, "PHA_ATC_CLA"), strict=True):
        atc_by_cip[cip].add(atc)
    assert len(atc_by_cip) > 20
    for cip, atcs in atc_by_cip.items():
        assert re.fullmatch(r"34009\d{8}", cip)
        assert ean13(cip[:12]) == cip
        assert len(atcs) == 1
        assert re.fullmatch(r"[A-Z]\d{2}[A-Z]{2}\d{2}", atcs.pop())
    assert set(_values(drugs, "PHA_ACT_QSN")) <= set(range(1, 7))


def test_claims_reimburse_at_most_what_was_charged(report: SynthReport, extracts: dict[str, pa.Table]) -> None:
    claims = extracts["outpatient_claims"]
    ordinary = pc.fill_null(pc.equal(claims.column("FLX_REG_ID").cast(pa.string()), ""), True)
    corrections = claims.filter(pc.invert(ordinary))
    claims = claims.filter(ordinary)
    assert pc.all(pc.less_equal(claims.column("PRS_REM_MNT"), claims.column("PRS_PAI_MNT"))).as_py()
    assert pc.all(pc.greater(claims.column("PRS_PAI_MNT"), 0)).as_py()
    # About 1% of lines are corrected later by a regularisation line: negative amounts, never more
    # than the line they name, which is an ordinary line of the same person and day.
    assert 0.005 < corrections.num_rows / claims.num_rows < 0.02
    originals = {row["FLX_ID"]: row for row in claims.to_pylist()}
    for line in corrections.to_pylist():
        original = originals[line["FLX_REG_ID"]]
        assert (line["BEN_NIR"], line["EXE_SOI_DTD"]) == (original["BEN_NIR"], original["EXE_SOI_DTD"])
        assert -original["PRS_PAI_MNT"] <= line["PRS_PAI_MNT"] < 0
        assert line["PRS_PAI_MNT"] <= line["PRS_REM_MNT"] <= 0
        assert -line["PRS_REM_MNT"] <= original["PRS_REM_MNT"]
    assert {1111, 1112, 3312} <= set(_values(claims, "PRS_NAT_REF"))
    lines = (report.out_dir / "outpatient_claims.csv").read_text(encoding="utf-8").splitlines()[1:]
    for line in lines[:1_000]:
        fields = line.split(";")
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", fields[2])
        assert re.fullmatch(r"-?\d+\.\d{2}", fields[6])
        assert re.fullmatch(r"-?\d+\.\d{2}", fields[7])


def test_gp_consultations(extracts: dict[str, pa.Table]) -> None:
    consultations = extracts["gp_consultations"]
    kinds = _values(consultations, "CNS_TYP")
    assert set(kinds) == {"G", "GS", "VG", "TC"}
    for kind, day, rpps in zip(
        kinds, _values(consultations, "CNS_DTE"), _values(consultations, "GP_RPPS"), strict=True
    ):
        assert kind != "TC" or day >= TELECONSULTATION_FROM
        assert re.fullmatch(r"10\d{9}", rpps)


def test_a_catalogue_must_serve_every_sex_and_age() -> None:
    Catalogue("complete", [Eligible(weight=1), Eligible(weight=2, sex=FEMALE)])
    with pytest.raises(ValueError, match="nothing for sex 1 aged 0"):
        Catalogue("women only", [Eligible(weight=1, sex=FEMALE)])
