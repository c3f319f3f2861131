"""Reference tables the platform itself provides (no person in them), kept in sync with code."""

from __future__ import annotations

from typing import Any

ICD10_CHAPTERS = (
    ("I", "A00", "B99", "Certain infectious and parasitic diseases"),
    ("II", "C00", "D48", "Neoplasms"),
    ("III", "D50", "D89", "Diseases of the blood and immune mechanism"),
    ("IV", "E00", "E90", "Endocrine, nutritional and metabolic diseases"),
    ("V", "F00", "F99", "Mental and behavioural disorders"),
    ("VI", "G00", "G99", "Diseases of the nervous system"),
    ("VII", "H00", "H59", "Diseases of the eye and adnexa"),
    ("VIII", "H60", "H95", "Diseases of the ear and mastoid process"),
    ("IX", "I00", "I99", "Diseases of the circulatory system"),
    ("X", "J00", "J99", "Diseases of the respiratory system"),
    ("XI", "K00", "K93", "Diseases of the digestive system"),
    ("XII", "L00", "L99", "Diseases of the skin and subcutaneous tissue"),
    ("XIII", "M00", "M99", "Diseases of the musculoskeletal system and connective tissue"),
    ("XIV", "N00", "N99", "Diseases of the genitourinary system"),
    ("XV", "O00", "O99", "Pregnancy, childbirth and the puerperium"),
    ("XVI", "P00", "P96", "Certain conditions originating in the perinatal period"),
    ("XVII", "Q00", "Q99", "Congenital malformations and chromosomal abnormalities"),
    ("XVIII", "R00", "R99", "Symptoms, signs and abnormal findings not elsewhere classified"),
    ("XIX", "S00", "T98", "Injury, poisoning and other consequences of external causes"),
    ("XX", "V01", "Y98", "External causes of morbidity and mortality"),
    ("XXI", "Z00", "Z99", "Factors influencing health status and contact with health services"),
    ("XXII", "U00", "U99", "Codes for special purposes"),
)


def ensure_reference_tables(catalog: Any, schemas: dict[str, Any]) -> list[str]:
    """Create ref.icd10_chapters from its schema file and (re)write it when its rows differ; returns the tables."""
    import pyarrow as pa

    from santelake.schema import ensure_table, to_arrow_schema

    declared = schemas["ref.icd10_chapters"]
    table, _ = ensure_table(catalog, declared)
    schema = to_arrow_schema(declared)
    rows = pa.Table.from_pylist(
        [dict(zip(("chapter", "first_code", "last_code", "title"), row, strict=True)) for row in ICD10_CHAPTERS],
        schema=schema,
    )
    current = table.scan().to_arrow() if table.current_snapshot() is not None else None
    if current is None or current.num_rows == 0:
        table.append(rows)  # an overwrite of nothing would warn that its delete matched no records
    elif current.sort_by("chapter").to_pylist() != rows.sort_by("chapter").to_pylist():
        table.overwrite(rows)
    return [declared.full_name]
