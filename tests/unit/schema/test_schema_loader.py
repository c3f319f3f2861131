"""Table files: a valid one loads; every broken rule is reported with file, line and key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pyiceberg.types import DecimalType, IntegerType

from santelake.schema import (
    OnRepeat,
    SchemaFileError,
    Sensitivity,
    SourceFormat,
    Transform,
    load_schemas,
    load_table_schema,
)

WriteFile = Callable[..., Path]


def line_of(text: str, fragment: str, occurrence: int = 1) -> int:
    """1-based line of the ``occurrence``-th line containing ``fragment``."""
    hits = [number for number, line in enumerate(text.splitlines(), start=1) if fragment in line]
    return hits[occurrence - 1]


def test_valid_file_loads(write_table_file: WriteFile, visits_yaml: str) -> None:
    declared = load_table_schema(write_table_file(visits_yaml))

    assert declared.full_name == "lab.visits"
    assert declared.source is not None and declared.source.format is SourceFormat.CSV
    assert declared.source.delimiter == ";"
    person = declared.column("person_id")
    assert person.sensitivity is Sensitivity.DIRECT_IDENTIFIER
    assert person.transforms == (Transform.PSEUDONYMISE,)
    assert person.line == line_of(visits_yaml, "name: person_id")
    assert declared.column("amount").type == DecimalType(10, 2)
    assert declared.column("visit_count").type == IntegerType()
    assert declared.column("birth_month").transforms == (
        Transform.PARSE_DATE_DDMMYYYY,
        Transform.GENERALISE_MONTH,
    )
    assert declared.raw_columns == ("NIR", "VISIT_DTE", "N", "AMOUNT", "WEIGHT", "TOTAL", "BIRTH", "NAME")
    assert declared.identifier_fields == ("person_id",)
    assert declared.on_repeat is OnRepeat.KEEP_LATEST
    assert [(p.column, p.transform) for p in declared.partition_by] == [("visit_date", "year")]
    assert [(s.column, s.descending, s.nulls_first) for s in declared.sort_by] == [("person_id", False, True)]


# (what is broken, text replaced, replacement, line fragment to expect the error on, words of the message)
BROKEN = [
    (
        "unknown column key",
        "    doc: Visits that day.\n",
        "    doc: Visits that day.\n    nullable: true\n",
        "nullable: true",
        "unknown key",
    ),
    (
        "unknown table key",
        "doc: One row per visit.\n",
        "doc: One row per visit.\nowner: me\n",
        "owner: me",
        "unknown key",
    ),
    ("bad type", "type: long", "type: varchar", "type: varchar", "'varchar' is not a type"),
    ("decimal too wide", "type: decimal(10,2)", "type: decimal(40,2)", "decimal(40,2)", "decimal(p,s) needs"),
    (
        "duplicate field id",
        "field_id: 6",
        "field_id: 5",
        "name: total",
        "field id 5 is already used by 'weight'",
    ),
    (
        "unknown sensitivity",
        "sensitivity: sensitive",
        "sensitivity: secret",
        "sensitivity: secret",
        "'secret' is not one of direct_identifier, quasi_identifier, sensitive, non_sensitive",
    ),
    (
        "direct identifier in clear",
        "    transform: pseudonymise\n",
        "    transform: identity\n",
        "sensitivity: direct_identifier",
        "never reaches the lake in clear",
    ),
    (
        "duplicate key",
        "    type: float\n",
        "    type: float\n    type: double\n",
        "type: double",
        "duplicate key",
    ),
    ("not YAML", "  - name: weight\n", "  - name: weight\n   oops: [\n", "oops", "not valid YAML"),
    ("field id not a number", "field_id: 6", "field_id: six", "field_id: six", "expected a whole number"),
    (
        "required not a boolean",
        "required: false\n    sensitivity: sensitive",
        "required: maybe\n    sensitivity: sensitive",
        "required: maybe",
        "expected true or false",
    ),
    ("gap in field ids", "field_id: 7", "field_id: 9", "columns:", "without gaps (missing 7)"),
    (
        "drop on a lake column",
        "transform: identity\n    doc: Running",
        "transform: drop\n    doc: Running",
        "transform: drop",
        "dropped_source_columns",
    ),
    (
        "generalise CSV text",
        "transform: [parse_date_ddmmyyyy, generalise_month]",
        "transform: generalise_month",
        "transform: generalise_month",
        "parse it first",
    ),
    (
        "transform gives another type",
        "source: VISIT_DTE\n    transform: parse_date_iso",
        "source: VISIT_DTE\n    transform: [parse_date_iso, postcode_to_department]",
        "parse_date_iso, postcode_to_department",
        "postcode_to_department takes",
    ),
    (
        "pseudonymise not last",
        "    transform: pseudonymise\n",
        "    transform: [pseudonymise, split_pipe]\n",
        "pseudonymise, split_pipe",
        "pseudonymise must be the last step",
    ),
    (
        "raw identifier in clear elsewhere",
        "source: TOTAL",
        "source: NIR",
        "name: total",
        "raw column 'NIR' is a direct identifier",
    ),
    (
        "dropped column also loaded",
        "  - name: NAME",
        "  - name: N",
        "- name: N\n",
        "loaded by column 'visit_count'",
    ),
    (
        "partition on unknown column",
        "  - column: visit_date",
        "  - column: nowhere",
        "column: nowhere",
        "'nowhere' is not a column",
    ),
    (
        "partition transform does not apply",
        "transform: year\n",
        "transform: truncate[3]\n",
        "truncate[3]",
        "does not apply to column 'visit_date'",
    ),
    (
        "identifier field optional",
        "identifier_fields: [person_id]",
        "identifier_fields: [visit_count]",
        "identifier_fields",
        "must be required: true",
    ),
    (
        "repeated key's meaning not said",
        "on_repeat: keep_latest\n",
        "",
        "identifier_fields",
        "must say what a repeated key means: on_repeat: keep_latest or refuse",
    ),
    ("repeated key's meaning unknown", "on_repeat: keep_latest", "on_repeat: merge", "merge",
     "'merge' is not one of keep_latest, refuse"),
    ("missing column key", "    doc: Weight in kg.\n", "", "name: weight", "missing key(s) doc"),
    ("missing source key", "    source: TOTAL\n", "", "name: total", "missing key source"),
    ("CSV without encoding", "  encoding: utf-8\n", "", "source:", "a CSV source needs 'encoding'"),
    ("unknown encoding", "encoding: utf-8", "encoding: klingon", "klingon", "not a text encoding"),
    ("unknown source format", "file: visits.csv", "file: visits.xlsx", "visits.xlsx", ".csv or .parquet"),
    ("bad column name", "name: visit_count", "name: VisitCount", "VisitCount", "snake_case"),
]


@pytest.mark.parametrize(
    ("old", "new", "fragment", "message"),
    [case[1:] for case in BROKEN],
    ids=[case[0] for case in BROKEN],
)
def test_broken_rule_is_reported_with_file_and_line(
    visits_yaml: str, write_table_file: WriteFile, old: str, new: str, fragment: str, message: str
) -> None:
    assert old in visits_yaml
    text = visits_yaml.replace(old, new, 1)
    path = write_table_file(text)

    with pytest.raises(SchemaFileError) as caught:
        load_table_schema(path)

    error = caught.value
    assert error.path == path
    assert error.line == line_of(text, fragment.rstrip("\n")), str(error)
    assert message in str(error)
    assert str(error).startswith(f"{path}:{error.line}:")


def test_field_ids_follow_file_order(visits_yaml: str, write_table_file: WriteFile) -> None:
    text = visits_yaml.replace("field_id: 6", "field_id: x").replace("field_id: 7", "field_id: 6")
    text = text.replace("field_id: x", "field_id: 7")

    with pytest.raises(
        SchemaFileError, match="column 6 has field id 7: list columns in field id order"
    ) as caught:
        load_table_schema(write_table_file(text))

    assert caught.value.line == line_of(text, "name: total")


def test_error_names_the_key_path(visits_yaml: str, write_table_file: WriteFile) -> None:
    path = write_table_file(visits_yaml.replace("sensitivity: sensitive", "sensitivity: secret"))

    with pytest.raises(SchemaFileError) as caught:
        load_table_schema(path)

    assert caught.value.key == "columns[4].sensitivity"


def test_file_must_sit_at_namespace_and_table(visits_yaml: str, write_table_file: WriteFile) -> None:
    path = write_table_file(visits_yaml, namespace="lab", table="elsewhere")

    with pytest.raises(SchemaFileError, match=r"must be declared in lab/visits.yaml"):
        load_table_schema(path)


def test_parquet_source_takes_no_delimiter(visits_yaml: str, write_table_file: WriteFile) -> None:
    text = visits_yaml.replace("file: visits.csv", "file: visits.parquet")

    with pytest.raises(SchemaFileError, match="only CSV sources have a delimiter"):
        load_table_schema(write_table_file(text))


def test_parquet_source_may_generalise_typed_dates(visits_yaml: str, write_table_file: WriteFile) -> None:
    text = visits_yaml.replace(
        'file: visits.csv\n  delimiter: ";"\n  encoding: utf-8', "file: visits.parquet"
    )
    text = text.replace("[parse_date_ddmmyyyy, generalise_month]", "generalise_month")

    declared = load_table_schema(write_table_file(text))

    assert declared.column("birth_month").transforms == (Transform.GENERALISE_MONTH,)


OPS_YAML = """\
table: runs
namespace: ops
doc: Load runs.
source: null
columns:
  - name: run_id
    field_id: 1
    type: string
    required: true
    sensitivity: non_sensitive
    doc: Run.
  - name: person_ref
    field_id: 2
    type: string
    required: false
    sensitivity: direct_identifier
    transform: pseudonymise
    doc: Pseudonym filled by the pipeline.
"""


def test_table_without_source_has_pipeline_filled_columns(write_table_file: WriteFile) -> None:
    declared = load_table_schema(write_table_file(OPS_YAML, namespace="ops", table="runs"))

    assert declared.source is None
    assert declared.raw_columns == ()
    assert declared.column("person_ref").pseudonymised


def test_table_without_source_refuses_raw_columns(write_table_file: WriteFile) -> None:
    text = OPS_YAML.replace("    doc: Run.\n", "    doc: Run.\n    source: RUN\n")

    with pytest.raises(SchemaFileError, match="has no source file") as caught:
        load_table_schema(write_table_file(text, namespace="ops", table="runs"))

    assert caught.value.line == line_of(text, "source: RUN")


def test_deprecated_column_may_share_a_name_with_its_replacement(
    visits_yaml: str, write_table_file: WriteFile
) -> None:
    text = visits_yaml.replace(
        "dropped_source_columns:",
        "  - name: total\n    field_id: 8\n    type: string\n    required: false\n"
        "    sensitivity: non_sensitive\n    source: TOTAL\n    transform: identity\n"
        "    doc: Total as text.\n"
        "dropped_source_columns:",
    ).replace("    doc: Running total.\n", "    doc: Running total.\n    deprecated: true\n")

    declared = load_table_schema(write_table_file(text))

    assert declared.column("total").field_id == 8
    assert [c.field_id for c in declared.columns if c.deprecated] == [6]


def test_empty_file_is_reported(write_table_file: WriteFile) -> None:
    with pytest.raises(SchemaFileError, match="the file is empty"):
        load_table_schema(write_table_file(""))


def test_load_schemas_refuses_a_file_outside_a_namespace(visits_yaml: str, tmp_path: Path) -> None:
    (tmp_path / "visits.yaml").write_text(visits_yaml, encoding="utf-8")

    with pytest.raises(SchemaFileError, match=r"<namespace>/<table>\.yaml"):
        load_schemas(tmp_path)


def test_load_after_orders_sources_and_ties_go_by_name(visits_yaml: str, write_table_file: WriteFile,
                                                       tmp_path: Path) -> None:
    from santelake.schema import sources

    write_table_file(visits_yaml.replace("table: visits", "table: people"), table="people")
    after = visits_yaml.replace('encoding: utf-8', 'encoding: utf-8\n  load_after: [people]')
    write_table_file(after.replace("table: visits", "table: alpha"), table="alpha")
    write_table_file(after)
    assert [s.name for s in sources(load_schemas(tmp_path / "schemas"))] == ["people", "alpha", "visits"]


def test_load_after_refuses_a_cycle_and_an_unknown_source(visits_yaml: str, write_table_file: WriteFile,
                                                           tmp_path: Path) -> None:
    def after(name: str) -> str:
        return visits_yaml.replace('encoding: utf-8', f'encoding: utf-8\n  load_after: [{name}]')

    write_table_file(after("people"))
    write_table_file(after("visits").replace("table: visits", "table: people"), table="people")
    with pytest.raises(SchemaFileError, match="load order has a cycle: people -> visits -> people"):
        load_schemas(tmp_path / "schemas")
    write_table_file(after("nobody"))
    with pytest.raises(SchemaFileError, match="'nobody' is not a table loaded from a source file"):
        load_schemas(tmp_path / "schemas")
