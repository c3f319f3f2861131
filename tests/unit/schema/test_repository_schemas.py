"""The table files in iceberg_schemas/: valid, true to the raw file contract, creatable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyiceberg.catalog.sql import SqlCatalog

from santelake.locations import schemas_dir
from santelake.schema import Sensitivity, SourceFormat, TableSchema, ensure_table, load_schemas

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "iceberg_schemas"

# The raw columns each source file has: the contract with the synthetic data generator.
RAW_CONTRACT = {
    "beneficiaries.csv": {
        "BEN_NIR", "BEN_NOM", "BEN_PRENOM", "BEN_NAI_DTE",
        "BEN_SEX_COD", "BEN_CP", "BEN_RNG_GEM", "BEN_DCD_DTE",
    },
    "outpatient_claims.csv": {
        "FLX_ID", "BEN_NIR", "EXE_SOI_DTD", "PRS_NAT_REF",
        "PSP_SPE_COD", "PSE_SPE_COD", "PRS_PAI_MNT", "PRS_REM_MNT", "FLX_REG_ID",
    },
    "pharmacy_dispensations.parquet": {
        "DSP_ID", "BEN_NIR", "EXE_SOI_DTD", "PHA_CIP_C13", "PHA_ATC_CLA", "PHA_ACT_QSN",
    },
    "hospital_stays.csv": {
        "RSA_NUM", "NIR_ANO", "ETA_NUM", "ENT_DAT", "SOR_DAT", "DGN_PAL", "DGN_ASS", "GRG_GHM",
    },
    "gp_consultations.parquet": {"CNS_ID", "BEN_NIR", "CNS_DTE", "GP_RPPS", "CNS_TYP"},
}  # fmt: skip
RAW_IDENTIFIERS = {"BEN_NIR", "NIR_ANO"}
RAW_NAMES = {"BEN_NOM", "BEN_PRENOM"}

SCHEMAS = load_schemas(SCHEMA_DIR)
SNDS = [schema for schema in SCHEMAS if schema.namespace == "snds"]


def test_every_source_and_ops_table_is_declared() -> None:
    assert sorted(s.source.file for s in SNDS if s.source) == sorted(RAW_CONTRACT)
    assert {s.full_name for s in SCHEMAS if s.namespace == "ops"} == {"ops.quarantine", "ops.ingested_files"}


@pytest.mark.parametrize("declared", SNDS, ids=lambda s: s.full_name)
def test_raw_columns_match_the_contract(declared: TableSchema) -> None:
    assert declared.source is not None
    assert set(declared.raw_columns) == RAW_CONTRACT[declared.source.file]
    if declared.source.format is SourceFormat.CSV:
        assert declared.source.delimiter == ";"


@pytest.mark.parametrize("declared", SNDS, ids=lambda s: s.full_name)
def test_person_id_is_the_pseudonymised_nir(declared: TableSchema) -> None:
    person = declared.column("person_id")

    assert person.source in RAW_IDENTIFIERS
    assert person.pseudonymised and person.sensitivity is Sensitivity.DIRECT_IDENTIFIER
    assert person.required


@pytest.mark.parametrize("declared", SNDS, ids=lambda s: s.full_name)
def test_no_identifier_or_name_reaches_the_lake_in_clear(declared: TableSchema) -> None:
    for column in declared.lake_columns:
        if column.source in RAW_IDENTIFIERS:
            assert column.pseudonymised, column.name
        assert column.source not in RAW_NAMES, column.name
    dropped = {d.name: d.sensitivity for d in declared.dropped_source_columns}
    assert all(dropped[name] is Sensitivity.DIRECT_IDENTIFIER for name in RAW_NAMES & set(dropped))


@pytest.mark.parametrize("declared", SCHEMAS, ids=lambda s: s.full_name)
def test_table_is_created_and_then_already_up_to_date(tmp_path: Path, declared: TableSchema) -> None:
    catalog = SqlCatalog("santelake", uri=f"sqlite:///{tmp_path / 'c.db'}", warehouse=f"file://{tmp_path}")

    table, _ = ensure_table(catalog, declared)
    _, changes = ensure_table(catalog, declared)

    assert [f.name for f in table.schema().fields] == [c.name for c in declared.lake_columns]
    assert changes == ()


def test_sources_come_in_load_order_beneficiaries_first() -> None:
    from santelake.schema import sources

    ordered = [s.name for s in sources(load_schemas(schemas_dir()))]
    assert ordered[0] == "beneficiaries"
    assert set(ordered) == {"beneficiaries", "hospital_stays", "outpatient_claims", "pharmacy_dispensations",
                            "gp_consultations"}
