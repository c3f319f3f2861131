"""Evolving a live table to its file: each allowed change is applied, each refused one explained."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table
from pyiceberg.types import DecimalType, DoubleType, LongType

from santelake.schema import (
    ChangeKind,
    SchemaEvolutionError,
    TableSchema,
    create_table,
    evolve,
    plan_evolution,
    to_arrow_schema,
)

Declare = Callable[..., TableSchema]
Document = dict[str, Any]


def column(document: Document, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in document["columns"] if c["name"] == name)
    return found


def new_column(document: Document, name: str, field_id: int, **overrides: Any) -> None:
    document["columns"].append(
        {
            "name": name,
            "field_id": field_id,
            "type": "string",
            "required": False,
            "doc": f"The {name}.",
            "sensitivity": "non_sensitive",
            "source": name.upper(),
            "transform": "identity",
            **overrides,
        }
    )


@pytest.fixture
def table(catalog: SqlCatalog, declare: Declare) -> Table:
    return create_table(catalog, declare())


def reloaded(catalog: SqlCatalog, table: Table) -> Table:
    return catalog.load_table(table.name())


def test_nothing_to_do(table: Table, declare: Declare) -> None:
    assert evolve(table, declare()) == ()


def test_add_column(catalog: SqlCatalog, table: Table, declare: Declare) -> None:
    changes = evolve(table, declare(lambda d: new_column(d, "ward", 8)))

    assert [c.kind for c in changes] == [ChangeKind.ADD_COLUMN]
    field = reloaded(catalog, table).schema().find_field("ward")
    assert (field.field_id, field.required, field.doc) == (8, False, "The ward.")


def test_widen_int_to_long_float_to_double_and_decimal_precision(
    catalog: SqlCatalog, table: Table, declare: Declare
) -> None:
    def widen(document: Document) -> None:
        column(document, "visit_count")["type"] = "long"
        column(document, "weight")["type"] = "double"
        column(document, "amount")["type"] = "decimal(14,2)"

    changes = evolve(table, declare(widen))

    assert {c.kind for c in changes} == {ChangeKind.WIDEN_TYPE}
    schema = reloaded(catalog, table).schema()
    assert schema.find_field("visit_count").field_type == LongType()
    assert schema.find_field("weight").field_type == DoubleType()
    assert schema.find_field("amount").field_type == DecimalType(14, 2)


def test_rename_by_field_id_keeps_the_data(catalog: SqlCatalog, declare: Declare) -> None:
    # Unpartitioned: writing a year() partition needs pyiceberg-core, which these tests do not assume.
    def unpartitioned(document: Document) -> None:
        document.pop("partition_by")

    declared = declare(unpartitioned)
    table = create_table(catalog, declared)
    table.append(
        pa.Table.from_pylist(
            [
                {
                    "person_id": "p",
                    "visit_date": date(2024, 1, 2),
                    "visit_count": 4,
                    "amount": Decimal("1.00"),
                    "weight": None,
                    "total": None,
                    "birth_month": None,
                }
            ],
            schema=to_arrow_schema(declared),
        )
    )

    def rename(document: Document) -> None:
        unpartitioned(document)
        column(document, "visit_count")["name"] = "daily_visits"

    changes = evolve(table, declare(rename))

    assert [c.kind for c in changes] == [ChangeKind.RENAME_COLUMN]
    live = reloaded(catalog, table)
    assert live.schema().find_field("daily_visits").field_id == 3
    assert live.scan(selected_fields=("daily_visits",)).to_arrow().column("daily_visits").to_pylist() == [4]


def test_doc_change(catalog: SqlCatalog, table: Table, declare: Declare) -> None:
    evolve(table, declare(lambda d: column(d, "weight").update(doc="Weight in kilograms.")))

    assert reloaded(catalog, table).schema().find_field("weight").doc == "Weight in kilograms."


def test_required_to_optional(catalog: SqlCatalog, table: Table, declare: Declare) -> None:
    changes = evolve(table, declare(lambda d: column(d, "amount").update(required=False)))

    assert [c.kind for c in changes] == [ChangeKind.MAKE_OPTIONAL]
    assert not reloaded(catalog, table).schema().find_field("amount").required


def test_deprecated_column_is_dropped(catalog: SqlCatalog, table: Table, declare: Declare) -> None:
    changes = evolve(table, declare(lambda d: column(d, "weight").update(deprecated=True)))

    assert [c.kind for c in changes] == [ChangeKind.DROP_COLUMN]
    assert "weight" not in [f.name for f in reloaded(catalog, table).schema().fields]


def test_dropped_name_can_come_back_under_a_new_id(
    catalog: SqlCatalog, table: Table, declare: Declare
) -> None:
    def replace_total(document: Document) -> None:
        column(document, "total")["deprecated"] = True
        new_column(document, "total", 8)

    evolve(table, declare(replace_total))

    field = reloaded(catalog, table).schema().find_field("total")
    assert (field.field_id, str(field.field_type)) == (8, "string")


def test_table_level_changes(catalog: SqlCatalog, table: Table, declare: Declare) -> None:
    def change(document: Document) -> None:
        document["doc"] = "Visits, one row each."
        document["identifier_fields"] = ["person_id", "visit_date"]
        document["sort_by"] = [{"column": "visit_date", "direction": "desc"}, {"column": "person_id"}]

    changes = evolve(table, declare(change))

    assert {c.kind for c in changes} == {
        ChangeKind.SET_COMMENT,
        ChangeKind.SET_IDENTIFIER_FIELDS,
        ChangeKind.SET_SORT_ORDER,
    }
    live = reloaded(catalog, table)
    assert live.properties["comment"] == "Visits, one row each."
    assert live.schema().identifier_field_names() == {"person_id", "visit_date"}
    assert [(f.source_id, f.direction.value, f.null_order.value) for f in live.sort_order().fields] == [
        (2, "desc", "nulls-last"),
        (1, "asc", "nulls-first"),
    ]
    assert evolve(live, declare(change)) == ()


def test_writer_properties_reach_tables_made_before_them(catalog: SqlCatalog, table: Table, declare: Declare) -> None:
    assert table.properties["write.parquet.dict-size-bytes"] == str(64 << 10)
    with table.transaction() as transaction:
        transaction.remove_properties("write.parquet.dict-size-bytes")
    older = reloaded(catalog, table)

    changes = evolve(older, declare(lambda _: None))

    assert [(c.kind, c.detail) for c in changes] == [(ChangeKind.SET_PROPERTIES, "write.parquet.dict-size-bytes")]
    assert reloaded(catalog, table).properties["write.parquet.dict-size-bytes"] == str(64 << 10)


def test_several_changes_in_one_commit(catalog: SqlCatalog, table: Table, declare: Declare) -> None:
    def change(document: Document) -> None:
        column(document, "visit_count").update(name="daily_visits", type="long", doc="Visits per day.")
        column(document, "weight")["deprecated"] = True
        new_column(document, "ward", 8)
        document["sort_by"] = [{"column": "ward"}]

    snapshots_before = len(reloaded(catalog, table).metadata.metadata_log)
    evolve(table, declare(change))

    live = reloaded(catalog, table)
    assert len(live.metadata.metadata_log) == snapshots_before + 1
    field = live.schema().find_field(3)
    assert (field.name, field.field_type, field.doc) == ("daily_visits", LongType(), "Visits per day.")
    assert [f.source_id for f in live.sort_order().fields] == [8]


# (case, change to the file, words each refusal must contain)
REFUSED: list[tuple[str, Callable[[Document], None], str]] = [
    (
        "narrowing long to int",
        lambda d: column(d, "total").update(type="int"),
        "type long -> int is not allowed",
    ),
    (
        "type change",
        lambda d: column(d, "visit_count").update(type="string"),
        "type int -> string is not allowed",
    ),
    (
        "decimal scale change",
        lambda d: column(d, "amount").update(type="decimal(12,3)"),
        "decimal(10, 2) -> decimal(12, 3) is not allowed",
    ),
    (
        "decimal narrowing",
        lambda d: column(d, "amount").update(type="decimal(8,2)"),
        "decimal(10, 2) -> decimal(8, 2) is not allowed",
    ),
    (
        "field id reused with another type",
        lambda d: column(d, "weight").update(name="ward", type="string"),
        "column 'ward' (field id 5, line",
    ),
    ("optional to required", lambda d: column(d, "weight").update(required=True), "optional -> required"),
    (
        "dropped without deprecated",
        lambda d: d.update(columns=[c for c in d["columns"] if c["name"] != "birth_month"]),
        "column 'birth_month' (field id 7) is in the table but not in the file",
    ),
    ("new required column", lambda d: new_column(d, "ward", 8, required=True), "must be required: false"),
    (
        "partition change",
        lambda d: d["partition_by"][0].update(transform="month"),
        "partition spec [year(visit_date)] -> [month(visit_date)]",
    ),
]


@pytest.mark.parametrize(("change", "message"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_change_names_file_and_column_and_changes_nothing(
    catalog: SqlCatalog, table: Table, declare: Declare, change: Callable[[Document], None], message: str
) -> None:
    declared = declare(change)
    metadata_before = reloaded(catalog, table).metadata_location

    with pytest.raises(SchemaEvolutionError) as caught:
        evolve(table, declared)

    assert str(caught.value).startswith(f"{declared.path}: cannot evolve table lab.visits")
    assert message in str(caught.value)
    assert reloaded(catalog, table).metadata_location == metadata_before


def test_reused_field_id_of_a_dropped_column_is_refused(
    catalog: SqlCatalog, table: Table, declare: Declare
) -> None:
    evolve(table, declare(lambda d: column(d, "weight").update(deprecated=True)))

    # The file now forgets the dropped column and gives its id to a new one.
    def reuse(document: Document) -> None:
        column(document, "weight").update(name="ward", type="string", source="WARD", doc="The ward.")

    with pytest.raises(SchemaEvolutionError, match="field id 5 was used before in this table"):
        plan_evolution(reloaded(catalog, table), declare(reuse))


def test_new_column_ids_must_follow_the_last_id(table: Table, declare: Declare) -> None:
    # The loader already refuses gaps in a file; this guards declarations built in code.
    declared = declare(lambda d: new_column(d, "ward", 8))
    gapped = replace(declared, columns=(*declared.columns[:-1], replace(declared.columns[-1], field_id=9)))

    with pytest.raises(SchemaEvolutionError, match="must take field ids 8"):
        plan_evolution(table, gapped)


def test_all_problems_are_listed_at_once(table: Table, declare: Declare) -> None:
    def break_twice(document: Document) -> None:
        column(document, "total")["type"] = "int"
        column(document, "weight")["required"] = True

    with pytest.raises(SchemaEvolutionError) as caught:
        evolve(table, declare(break_twice))

    assert len(caught.value.problems) == 2
