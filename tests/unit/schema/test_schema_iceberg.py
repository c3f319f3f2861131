"""Creating tables from table files in a real SqlCatalog, and the Arrow schema they write with."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.types import DateType, DecimalType, IntegerType, StringType

from santelake.schema import TableSchema, create_table, ensure_table, to_arrow_schema
from santelake.schema.evolution import ChangeKind

Declare = Callable[..., TableSchema]


def test_created_table_has_declared_ids_spec_sort_and_comment(catalog: SqlCatalog, declare: Declare) -> None:
    declared = declare()

    table = create_table(catalog, declared)

    schema = table.schema()
    assert [(f.field_id, f.name) for f in schema.fields] == [(c.field_id, c.name) for c in declared.columns]
    assert schema.find_field("person_id").field_type == StringType()
    assert schema.find_field("person_id").required
    assert schema.find_field("amount").field_type == DecimalType(10, 2)
    assert schema.find_field("visit_count").field_type == IntegerType()
    assert schema.find_field("visit_date").field_type == DateType()
    assert schema.find_field("amount").doc == "Amount paid."
    assert schema.identifier_field_names() == {"person_id"}
    assert [(f.source_id, str(f.transform), f.name) for f in table.spec().fields] == [
        (2, "year", "visit_date_year")
    ]
    assert [(f.source_id, str(f.transform)) for f in table.sort_order().fields] == [(1, "identity")]
    assert table.properties["comment"] == "One row per visit."
    assert table.metadata.format_version == 2


def test_deprecated_columns_are_not_created_but_keep_their_ids(catalog: SqlCatalog, declare: Declare) -> None:
    def drop_weight(document: dict[str, Any]) -> None:
        next(c for c in document["columns"] if c["name"] == "weight")["deprecated"] = True

    table = create_table(catalog, declare(drop_weight))

    assert [f.field_id for f in table.schema().fields] == [1, 2, 3, 4, 6, 7]
    assert table.metadata.last_column_id == 7


def test_arrow_schema_carries_field_ids_and_round_trips(catalog: SqlCatalog, declare: Declare) -> None:
    # Unpartitioned: writing a year() partition needs pyiceberg-core, which these tests do not assume.
    declared = declare(lambda document: document.pop("partition_by"))
    table = create_table(catalog, declared)
    arrow = to_arrow_schema(declared)
    assert arrow.field("person_id").metadata[b"PARQUET:field_id"] == b"1"
    assert not arrow.field("person_id").nullable

    row: dict[str, Any] = {
        "person_id": "a" * 64,
        "visit_date": date(2024, 5, 2),
        "visit_count": 1,
        "amount": Decimal("12.30"),
        "weight": 71.5,
        "total": 3,
        "birth_month": date(1980, 1, 1),
    }
    table.append(pa.Table.from_pylist([row], schema=arrow))

    assert table.scan().to_arrow().to_pylist() == [row]


def test_ensure_table_creates_then_evolves(catalog: SqlCatalog, declare: Declare) -> None:
    _, created = ensure_table(catalog, declare())
    assert [change.kind for change in created] == [ChangeKind.CREATE_TABLE]

    _, unchanged = ensure_table(catalog, declare())
    assert unchanged == ()
