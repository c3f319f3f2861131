"""The catalogue's figures read from a real pyiceberg lake (SQLite catalog, file warehouse)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.csv as pacsv
from pyiceberg.catalog.sql import SqlCatalog

from santelake.catalogue.live import coverage
from santelake.ingest import runner
from santelake.ingest.load import Loader
from santelake.pseudonymise import Pseudonymiser
from santelake.synth import synthesize


def test_rows_persons_period_and_last_load_come_from_the_lake(tmp_path: Path) -> None:
    extracts = tmp_path / "extracts"
    synthesize(extracts, scale=50, seed=5)
    catalog = SqlCatalog("santelake", uri=f"sqlite:///{tmp_path / 'catalog.db'}",
                         warehouse=f"file://{tmp_path / 'warehouse'}")
    for namespace in ("snds", "ops"):
        catalog.create_namespace(namespace)
    loader = Loader(catalog, Pseudonymiser.from_key(bytes(range(32))), runner.schemas(), threshold=0.5)
    before = dt.datetime.now(dt.UTC)
    beneficiaries = loader.load("snds.beneficiaries", extracts / "beneficiaries.csv")
    stays = loader.load("snds.hospital_stays", extracts / "hospital_stays.csv")
    schemas = runner.schemas()

    figures = coverage(catalog, [schemas["snds.beneficiaries"], schemas["snds.hospital_stays"],
                                 schemas["snds.gp_consultations"]])

    assert "snds.gp_consultations" not in figures  # never loaded: no table, no figures
    raw = pacsv.read_csv(extracts / "hospital_stays.csv", read_options=pacsv.ReadOptions(encoding="latin-1"),
                         parse_options=pacsv.ParseOptions(delimiter=";"),
                         convert_options=pacsv.ConvertOptions(column_types={"NIR_ANO": "string",
                                                                            "ENT_DAT": "string"}))
    admissions = sorted(dt.datetime.strptime(d, "%d%m%Y").date() for d in raw["ENT_DAT"].to_pylist())
    got = figures["snds.hospital_stays"]
    assert got.rows == stays.rows_published
    assert got.persons == len({n[:13] for n in raw["NIR_ANO"].to_pylist()})
    assert (got.first, got.last) == (admissions[0], admissions[-1])
    assert got.last_load is not None and got.last_load >= before
    assert figures["snds.beneficiaries"].persons == beneficiaries.rows_published == 50
    assert figures["snds.beneficiaries"].first is None  # a birth month is no period of care
