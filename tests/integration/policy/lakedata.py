"""Small synthetic rows for the tables the policies name, written with pyiceberg.

The values are chosen so that each policy rule has rows on both sides of it: departments
inside and outside the project's region, stays before, inside and after its years.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Any

from santelake.schema import TableSchema, ensure_table, load_schemas, to_arrow_schema


def person(n: int) -> str:
    return hashlib.sha256(f"person-{n}".encode()).hexdigest()


D = dt.date
ROWS: dict[str, list[dict[str, Any]]] = {
    "snds.beneficiaries": [
        {"person_id": person(1), "birth_month": D(1950, 3, 1), "sex_code": 1, "residence_department": "75",
         "twin_rank": 1, "death_month": None},
        {"person_id": person(2), "birth_month": D(1980, 7, 1), "sex_code": 2, "residence_department": "92",
         "twin_rank": 1, "death_month": None},
        {"person_id": person(3), "birth_month": D(2010, 11, 1), "sex_code": 1, "residence_department": "13",
         "twin_rank": 1, "death_month": None},
        {"person_id": person(4), "birth_month": D(1945, 1, 1), "sex_code": 2, "residence_department": "69",
         "twin_rank": 1, "death_month": D(2023, 5, 1)},
        {"person_id": person(5), "birth_month": D(1999, 9, 1), "sex_code": 1, "residence_department": None,
         "twin_rank": 2, "death_month": None},
        {"person_id": person(6), "birth_month": D(1962, 12, 1), "sex_code": 2, "residence_department": "93",
         "twin_rank": 1, "death_month": D(2021, 2, 1)},
    ],
    "snds.hospital_stays": [
        {"stay_id": "s1", "person_id": person(1), "establishment_finess": "750000001", "admission_date": D(2018, 6, 1),
         "discharge_date": D(2018, 6, 4), "main_diagnosis": "I500", "associated_diagnoses": None, "drg_code": "05M09"},
        {"stay_id": "s2", "person_id": person(1), "establishment_finess": "750000001", "admission_date": D(2019, 2, 3),
         "discharge_date": D(2019, 2, 9), "main_diagnosis": "I501", "associated_diagnoses": "E119|I10",
         "drg_code": "05M09"},
        {"stay_id": "s3", "person_id": person(3), "establishment_finess": "130000002", "admission_date": D(2022, 8, 9),
         "discharge_date": D(2022, 8, 10), "main_diagnosis": "J189", "associated_diagnoses": None,
         "drg_code": "04M05"},
        {"stay_id": "s4", "person_id": person(6), "establishment_finess": "930000003", "admission_date": D(2025, 1, 5),
         "discharge_date": D(2025, 1, 8), "main_diagnosis": "E119", "associated_diagnoses": None, "drg_code": "10M02"},
    ],
    "snds.pharmacy_dispensations": [
        {"dispensation_id": "d1", "person_id": person(2), "dispensing_date": D(2023, 3, 2),
         "cip13_code": "3400930000001", "atc_code": "A10BA02", "quantity": 2},
    ],
    "snds.outpatient_claims": [
        {"claim_id": "c1", "person_id": person(2), "care_date": D(2023, 3, 1), "act_code": 1111,
         "prescriber_specialty": 1, "performer_specialty": 1, "amount_paid": Decimal("25.00"),
         "amount_reimbursed": Decimal("17.50")},
    ],
    "snds.gp_consultations": [
        {"consultation_id": "g1", "person_id": person(2), "consultation_date": D(2023, 3, 1),
         "gp_rpps": "10000000001", "consultation_type": "G"},
    ],
    "ops.quarantine": [
        {"target_table": "snds.beneficiaries", "source_file": "beneficiaries.csv", "file_sha256": "0" * 64,
         "row_number": 7, "rule": "birth date in the future", "raw_reference": person(7),
         "pseudonym_key_id": "k1", "loaded_at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC)},
    ],
}


def load(catalog: Any, schemas_dir: Path) -> dict[str, TableSchema]:
    """Create every declared table that has rows here and fill it once; returns the schemas."""
    import pyarrow as pa

    declared = {t.full_name: t for t in load_schemas(schemas_dir)}
    for name, rows in ROWS.items():
        schema = declared[name]
        catalog.create_namespace_if_not_exists(schema.namespace)
        table, _ = ensure_table(catalog, schema)
        if table.current_snapshot() is None:
            table.append(pa.Table.from_pylist(rows, schema=to_arrow_schema(schema)))
    return declared
