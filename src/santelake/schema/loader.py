"""Read table files from ``iceberg_schemas/`` and check every rule of the format.

A file is parsed into YAML nodes rather than plain Python values so that every error can
name the line and column of the key at fault. The rules themselves are listed in
docs/schemas.md; each one has a test in tests/unit/schema/test_schema_loader.py.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import NoReturn, TypeVar

import yaml
from pyiceberg.transforms import UnknownTransform, parse_transform
from pyiceberg.types import (
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    PrimitiveType,
    StringType,
    TimestampType,
    TimestamptzType,
)

from santelake.schema.errors import SchemaFileError
from santelake.schema.model import (
    Column,
    DroppedSourceColumn,
    OnRepeat,
    PartitionField,
    Sensitivity,
    SortField,
    SourceFile,
    SourceFormat,
    TableSchema,
    Transform,
)

SCHEMA_SUFFIX = ".yaml"

TABLE_KEYS = (
    "table",
    "namespace",
    "doc",
    "source",
    "columns",
    "dropped_source_columns",
    "partition_by",
    "sort_by",
    "identifier_fields",
    "on_repeat",
)
REQUIRED_TABLE_KEYS = ("table", "namespace", "doc", "source", "columns")
SOURCE_KEYS = ("file", "delimiter", "encoding", "load_after")
COLUMN_KEYS = (
    "name",
    "field_id",
    "type",
    "required",
    "doc",
    "sensitivity",
    "source",
    "transform",
    "deprecated",
)
REQUIRED_COLUMN_KEYS = ("name", "field_id", "type", "required", "doc", "sensitivity")
DROPPED_KEYS = ("name", "sensitivity", "doc")
PARTITION_KEYS = ("column", "transform")
SORT_KEYS = ("column", "transform", "direction", "nulls")

PRIMITIVE_TYPES: dict[str, PrimitiveType] = {
    "string": StringType(),
    "int": IntegerType(),
    "long": LongType(),
    "float": FloatType(),
    "double": DoubleType(),
    "date": DateType(),
    "timestamp": TimestampType(),
    "timestamptz": TimestamptzType(),
    "boolean": BooleanType(),
}
_DECIMAL_TYPE = re.compile(r"decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_MAX_DECIMAL_PRECISION = 38

_Choice = TypeVar("_Choice", bound=StrEnum)


class _Node:
    """A YAML node with the file and key path it came from, so errors can point at it."""

    def __init__(
        self,
        path: Path,
        node: yaml.Node,
        key: str,
        constructor: yaml.constructor.SafeConstructor,
        mark: yaml.Mark | None = None,
    ):
        self.path = path
        self.node = node
        self.key = key
        self._constructor = constructor
        self._mark = mark or node.start_mark

    def fail(self, message: str) -> NoReturn:
        raise SchemaFileError(self.path, self._mark.line + 1, self._mark.column + 1, self.key, message)

    def _child(self, node: yaml.Node, key: str, mark: yaml.Mark | None = None) -> _Node:
        return _Node(self.path, node, key, self._constructor, mark)

    @property
    def line(self) -> int:
        return int(self._mark.line) + 1

    @property
    def is_null(self) -> bool:
        return isinstance(self.node, yaml.ScalarNode) and self.node.tag == "tag:yaml.org,2002:null"

    def mapping(self, allowed: Sequence[str], required: Sequence[str]) -> dict[str, _Node]:
        if not isinstance(self.node, yaml.MappingNode):
            self.fail(f"expected a mapping with keys {', '.join(allowed)}")
        found: dict[str, _Node] = {}
        for key_node, value_node in self.node.value:
            name = self._child(key_node, self.key).value()
            key = f"{self.key}.{name}" if self.key else str(name)
            if name not in allowed:
                self._child(key_node, key).fail(f"unknown key; allowed keys are {', '.join(allowed)}")
            if name in found:
                self._child(key_node, key).fail(f"duplicate key (first given on line {found[name].line})")
            # A list or mapping under a key starts on a later line; errors about it point at the key.
            mark = None if isinstance(value_node, yaml.ScalarNode) else key_node.start_mark
            found[str(name)] = self._child(value_node, key, mark)
        missing = [name for name in required if name not in found]
        if missing:
            self.fail(f"missing key(s) {', '.join(missing)}")
        return found

    def sequence(self) -> list[_Node]:
        if not isinstance(self.node, yaml.SequenceNode):
            self.fail("expected a list")
        return [self._child(item, f"{self.key}[{index}]") for index, item in enumerate(self.node.value)]

    def value(self) -> object:
        if not isinstance(self.node, yaml.ScalarNode):
            self.fail("expected a single value, not a list or a mapping")
        return self._constructor.construct_object(self.node)

    def string(self) -> str:
        value = self.value()
        if not isinstance(value, str) or not value.strip():
            self.fail(f"expected a non-empty text, found {value!r}")
        return value.strip()

    def name(self) -> str:
        value = self.string()
        if not _NAME.fullmatch(value):
            self.fail(f"{value!r} is not a lower-case snake_case name (letters, digits, '_')")
        return value

    def integer(self) -> int:
        value = self.value()
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"expected a whole number, found {value!r}")
        return value

    def boolean(self) -> bool:
        value = self.value()
        if not isinstance(value, bool):
            self.fail(f"expected true or false, found {value!r}")
        return value

    def choice(self, choices: type[_Choice]) -> _Choice:
        value = self.value()
        for choice in choices:
            if value == choice.value:
                return choice
        self.fail(f"{value!r} is not one of {', '.join(choice.value for choice in choices)}")


class _Kind(StrEnum):
    """What a value is between two transform steps; checks that the steps fit together."""

    RAW = "a raw Parquet value"
    CSV_TEXT = "raw CSV text"
    STRING = "a string"
    DATE = "a date"
    DECIMAL = "a decimal"


_TEXT_INPUTS = frozenset({_Kind.RAW, _Kind.CSV_TEXT, _Kind.STRING})
_DATE_INPUTS = frozenset({_Kind.RAW, _Kind.DATE})
# Accepted input kinds and output kind of each step; identity passes its input through.
_STEPS: dict[Transform, tuple[frozenset[_Kind], _Kind]] = {
    Transform.PSEUDONYMISE: (_TEXT_INPUTS, _Kind.STRING),
    Transform.PARSE_DATE_DDMMYYYY: (_TEXT_INPUTS, _Kind.DATE),
    Transform.PARSE_DATE_ISO: (_TEXT_INPUTS, _Kind.DATE),
    Transform.GENERALISE_MONTH: (_DATE_INPUTS, _Kind.DATE),
    Transform.GENERALISE_YEAR: (_DATE_INPUTS, _Kind.DATE),
    Transform.POSTCODE_TO_DEPARTMENT: (_TEXT_INPUTS, _Kind.STRING),
    Transform.SPLIT_PIPE: (_TEXT_INPUTS, _Kind.STRING),
    Transform.DECIMAL: (_TEXT_INPUTS, _Kind.DECIMAL),
}
_COLUMN_TYPE_OF_KIND: dict[_Kind, type[PrimitiveType]] = {
    _Kind.STRING: StringType,
    _Kind.DATE: DateType,
    _Kind.DECIMAL: DecimalType,
}


def load_schemas(directory: Path) -> tuple[TableSchema, ...]:
    """Every table file under ``directory`` (``<namespace>/<table>.yaml``), sorted by table."""
    if not directory.is_dir():
        raise SchemaFileError(directory, 0, 0, "", "schema directory not found")
    stray = sorted(directory.glob("*" + SCHEMA_SUFFIX)) + sorted(directory.glob("*/*.yml"))
    if stray:
        raise SchemaFileError(
            stray[0], 1, 1, "", f"table files live at <namespace>/<table>{SCHEMA_SUFFIX} under {directory}"
        )
    schemas = tuple(load_table_schema(path) for path in sorted(directory.glob("*/*" + SCHEMA_SUFFIX)))
    sources(schemas)  # checks every load_after names a source and that they form no cycle
    return schemas


def sources(schemas: Sequence[TableSchema]) -> tuple[TableSchema, ...]:
    """The tables loaded from source files, in load order: each after those its ``load_after``
    names, ties by name. The one list of sources: the DAG, the runner and the generator use it."""
    by_name = {s.name: s for s in schemas if s.source is not None}
    ordered: list[TableSchema] = []
    visiting: list[str] = []

    def visit(table: TableSchema) -> None:
        if table in ordered:
            return
        if table.name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(table.name):], table.name])
            raise SchemaFileError(table.path, 0, 0, "source.load_after", f"load order has a cycle: {cycle}")
        visiting.append(table.name)
        assert table.source is not None
        for name in table.source.load_after:
            if name not in by_name:
                raise SchemaFileError(table.path, 0, 0, "source.load_after",
                                      f"{name!r} is not a table loaded from a source file")
            visit(by_name[name])
        visiting.pop()
        ordered.append(table)

    for name in sorted(by_name):
        visit(by_name[name])
    return tuple(ordered)


def load_table_schema(path: Path) -> TableSchema:
    """Parse and check one table file; raise SchemaFileError at the first broken rule."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaFileError(path, 0, 0, "", f"cannot read the file: {exc}") from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        raise SchemaFileError(path, line, column, "", f"not valid YAML: {exc.problem}") from exc
    if root is None:
        raise SchemaFileError(path, 1, 1, "", "the file is empty")
    return _table(_Node(path, root, "", yaml.constructor.SafeConstructor()))


def _table(root: _Node) -> TableSchema:
    keys = root.mapping(TABLE_KEYS, REQUIRED_TABLE_KEYS)
    name = keys["table"].name()
    namespace = keys["namespace"].name()
    if root.path.stem != name or root.path.parent.name != namespace:
        keys["table"].fail(f"table {namespace}.{name} must be declared in {namespace}/{name}{SCHEMA_SUFFIX}")
    source = _source(keys["source"])
    column_nodes = keys["columns"].sequence()
    if not column_nodes:
        keys["columns"].fail("a table needs at least one column")
    columns = tuple(_column(node, source) for node in column_nodes)
    _check_columns(keys["columns"], column_nodes, columns)
    lake = {column.name: column for column in columns if not column.deprecated}
    dropped = _dropped_source_columns(keys.get("dropped_source_columns"), source, columns)
    return TableSchema(
        path=root.path,
        name=name,
        namespace=namespace,
        doc=keys["doc"].string(),
        source=source,
        columns=columns,
        dropped_source_columns=dropped,
        partition_by=tuple(_partition_field(node, lake) for node in _items(keys.get("partition_by"))),
        sort_by=tuple(_sort_field(node, lake) for node in _items(keys.get("sort_by"))),
        identifier_fields=(identifiers := _identifier_fields(keys.get("identifier_fields"), lake)),
        on_repeat=_on_repeat(keys.get("identifier_fields"), keys.get("on_repeat"), source, identifiers),
    )


def _on_repeat(identifier_node: _Node | None, node: _Node | None, source: SourceFile | None,
               identifiers: tuple[str, ...]) -> OnRepeat | None:
    """Required of a loaded table with identifier fields (no silent default), refused elsewhere."""
    if source is None or not identifiers:
        if node is not None:
            node.fail("on_repeat applies only to a table with a source and identifier_fields")
        return None
    if node is None:
        assert identifier_node is not None
        identifier_node.fail(f"a loaded table with identifier_fields must say what a repeated key means: on_repeat: "
                  f"{' or '.join(choice.value for choice in OnRepeat)} (docs/ingestion.md)")
    return node.choice(OnRepeat)


def _items(node: _Node | None) -> list[_Node]:
    return [] if node is None else node.sequence()


def _source(node: _Node) -> SourceFile | None:
    if node.is_null:
        return None
    keys = node.mapping(SOURCE_KEYS, ("file",))
    file = keys["file"].string()
    load_after = tuple(item.name() for item in _items(keys.get("load_after")))
    suffix = PurePosixPath(file).suffix.lower().lstrip(".")
    if suffix not in {f.value for f in SourceFormat}:
        keys["file"].fail(f"{file!r}: a source file is .csv or .parquet")
    source_format = SourceFormat(suffix)
    if source_format is SourceFormat.PARQUET:
        for key in ("delimiter", "encoding"):
            if key in keys:
                keys[key].fail("only CSV sources have a delimiter and an encoding")
        return SourceFile(file=file, format=source_format, load_after=load_after)
    for key in ("delimiter", "encoding"):
        if key not in keys:
            node.fail(f"a CSV source needs {key!r}")
    delimiter = keys["delimiter"].value()
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        keys["delimiter"].fail(f"expected one character, found {delimiter!r}")
    encoding = keys["encoding"].string()
    try:
        codecs.lookup(encoding)
    except LookupError:
        keys["encoding"].fail(f"{encoding!r} is not a text encoding Python knows")
    return SourceFile(file=file, format=source_format, delimiter=delimiter, encoding=encoding, load_after=load_after)


def _iceberg_type(node: _Node) -> PrimitiveType:
    text = node.string()
    if text in PRIMITIVE_TYPES:
        return PRIMITIVE_TYPES[text]
    match = _DECIMAL_TYPE.fullmatch(text)
    if match:
        precision, scale = int(match[1]), int(match[2])
        if not 1 <= precision <= _MAX_DECIMAL_PRECISION or scale > precision:
            node.fail(f"{text!r}: decimal(p,s) needs 1 <= p <= {_MAX_DECIMAL_PRECISION} and s <= p")
        return DecimalType(precision, scale)
    node.fail(f"{text!r} is not a type; use one of {', '.join(PRIMITIVE_TYPES)} or decimal(p,s)")


def _column(node: _Node, source: SourceFile | None) -> Column:
    keys = node.mapping(COLUMN_KEYS, REQUIRED_COLUMN_KEYS)
    field_id = keys["field_id"].integer()
    if field_id < 1:
        keys["field_id"].fail("a field id is a positive whole number")
    raw: str | None = None
    if source is None:
        if "source" in keys and not keys["source"].is_null:
            keys["source"].fail("this table has no source file, so its columns have no raw source")
    elif "source" not in keys:
        node.fail("missing key source (the raw column name, or null when the pipeline fills the column)")
    elif not keys["source"].is_null:
        raw = keys["source"].string()
    column = Column(
        name=keys["name"].name(),
        field_id=field_id,
        type=_iceberg_type(keys["type"]),
        required=keys["required"].boolean(),
        doc=keys["doc"].string(),
        sensitivity=keys["sensitivity"].choice(Sensitivity),
        source=raw,
        transforms=_transforms(keys.get("transform")),
        deprecated=keys["deprecated"].boolean() if "deprecated" in keys else False,
        line=node.line,
    )
    _check_transforms(keys.get("transform") or node, column, source)
    if column.sensitivity is Sensitivity.DIRECT_IDENTIFIER and not column.pseudonymised:
        keys["sensitivity"].fail(
            "a direct identifier never reaches the lake in clear: give the column transform pseudonymise, "
            "or list the raw column under dropped_source_columns"
        )
    return column


def _transforms(node: _Node | None) -> tuple[Transform, ...]:
    if node is None or node.is_null:
        return ()
    steps = node.sequence() if isinstance(node.node, yaml.SequenceNode) else [node]
    transforms = tuple(step.choice(Transform) for step in steps)
    if Transform.DROP in transforms:
        node.fail("a lake column cannot be dropped; list the raw column under dropped_source_columns")
    if len(set(transforms)) != len(transforms):
        node.fail("a step is repeated")
    return transforms


def _check_transforms(node: _Node, column: Column, source: SourceFile | None) -> None:
    if column.source is None:
        if column.transforms not in {(), (Transform.PSEUDONYMISE,)}:
            node.fail("a column the pipeline fills (no source) takes no transform, or only pseudonymise")
        return
    if not column.transforms:
        node.fail(f"column {column.name!r} reads raw column {column.source!r} and needs a transform")
    if Transform.PSEUDONYMISE in column.transforms[:-1]:
        node.fail("pseudonymise must be the last step: any step after it would change the pseudonym")
    kind = _Kind.CSV_TEXT if source is not None and source.format is SourceFormat.CSV else _Kind.RAW
    for step in column.transforms:
        if step is Transform.IDENTITY:
            continue
        accepted, output = _STEPS[step]
        if kind not in accepted:
            hint = "; parse it first (parse_date_ddmmyyyy or parse_date_iso)" if output is _Kind.DATE else ""
            node.fail(f"{step.value} takes {' or '.join(sorted(accepted))} but is given {kind.value}{hint}")
        kind = output
    wanted = _COLUMN_TYPE_OF_KIND.get(kind)
    if wanted is not None and not isinstance(column.type, wanted):
        node.fail(f"the transform gives {kind.value} but the column type is {column.type}")


def _check_columns(node: _Node, nodes: Sequence[_Node], columns: Sequence[Column]) -> None:
    seen_ids: dict[int, Column] = {}
    seen_names: dict[str, Column] = {}
    for column_node, column in zip(nodes, columns, strict=True):
        if column.field_id in seen_ids:
            first = seen_ids[column.field_id]
            column_node.fail(
                f"field id {column.field_id} is already used by {first.name!r} (line {first.line})"
            )
        seen_ids[column.field_id] = column
        if column.deprecated:
            continue
        if column.name in seen_names:
            column_node.fail(
                f"column name {column.name!r} is already used on line {seen_names[column.name].line}"
            )
        seen_names[column.name] = column
    gaps = sorted(set(range(1, len(columns) + 1)) - set(seen_ids))
    if gaps:
        node.fail(
            f"field ids must run 1..{len(columns)} without gaps (missing {', '.join(map(str, gaps))}) so "
            "that a table created from this file gets the same ids; keep dropped columns, deprecated: true"
        )
    for column_node, column, position in zip(nodes, columns, range(1, len(columns) + 1), strict=True):
        if column.field_id != position:
            column_node.fail(
                f"column {position} has field id {column.field_id}: list columns in field id order, as the "
                "table holds them; a new column goes last"
            )
    if not any(not column.deprecated for column in columns):
        node.fail("every column is deprecated; a table needs at least one live column")
    # A raw column that feeds a direct identifier may only ever reach the lake as a pseudonym.
    direct = {c.source for c in columns if c.sensitivity is Sensitivity.DIRECT_IDENTIFIER and c.source}
    for column_node, column in zip(nodes, columns, strict=True):
        if column.source in direct and not column.pseudonymised:
            column_node.fail(
                f"raw column {column.source!r} is a direct identifier: {column.name!r} must pseudonymise it"
            )


def _dropped_source_columns(
    node: _Node | None, source: SourceFile | None, columns: Sequence[Column]
) -> tuple[DroppedSourceColumn, ...]:
    if node is None:
        return ()
    if source is None and node.sequence():
        node.fail("this table has no source file, so it has no source columns to drop")
    used = {column.source: column for column in columns if column.source is not None}
    dropped: list[DroppedSourceColumn] = []
    for item in node.sequence():
        keys = item.mapping(DROPPED_KEYS, DROPPED_KEYS)
        name = keys["name"].string()
        if name in used:
            keys["name"].fail(
                f"raw column {name!r} is loaded by column {used[name].name!r}; it cannot be dropped"
            )
        if name in {d.name for d in dropped}:
            keys["name"].fail(f"raw column {name!r} is listed twice")
        dropped.append(
            DroppedSourceColumn(
                name=name, sensitivity=keys["sensitivity"].choice(Sensitivity), doc=keys["doc"].string()
            )
        )
    return tuple(dropped)


def _lake_column(node: _Node, lake: dict[str, Column]) -> Column:
    name = node.string()
    if name not in lake:
        node.fail(f"{name!r} is not a column of this table (deprecated columns do not count)")
    return lake[name]


def _transform_for(node: _Node, column: Column) -> str:
    text = node.string()
    transform = parse_transform(text)
    if isinstance(transform, UnknownTransform):
        node.fail(
            f"{text!r} is not an Iceberg transform (identity, year, month, day, hour, bucket[n], truncate[w])"
        )
    if not transform.can_transform(column.type):
        node.fail(f"transform {text!r} does not apply to column {column.name!r} of type {column.type}")
    return str(transform)


def _partition_field(node: _Node, lake: dict[str, Column]) -> PartitionField:
    keys = node.mapping(PARTITION_KEYS, PARTITION_KEYS)
    column = _lake_column(keys["column"], lake)
    return PartitionField(column=column.name, transform=_transform_for(keys["transform"], column))


class _Direction(StrEnum):
    ASC = "asc"
    DESC = "desc"


class _Nulls(StrEnum):
    FIRST = "first"
    LAST = "last"


def _sort_field(node: _Node, lake: dict[str, Column]) -> SortField:
    keys = node.mapping(SORT_KEYS, ("column",))
    column = _lake_column(keys["column"], lake)
    transform = _transform_for(keys["transform"], column) if "transform" in keys else "identity"
    descending = "direction" in keys and keys["direction"].choice(_Direction) is _Direction.DESC
    # Iceberg's defaults: nulls first when ascending, last when descending.
    nulls_first = keys["nulls"].choice(_Nulls) is _Nulls.FIRST if "nulls" in keys else not descending
    return SortField(column=column.name, transform=transform, descending=descending, nulls_first=nulls_first)


def _identifier_fields(node: _Node | None, lake: dict[str, Column]) -> tuple[str, ...]:
    names: list[str] = []
    for item in _items(node):
        column = _lake_column(item, lake)
        if not column.required:
            item.fail(f"identifier field {column.name!r} must be required: true")
        if isinstance(column.type, FloatType | DoubleType):
            item.fail(f"identifier field {column.name!r} cannot be a float or double")
        if column.name in names:
            item.fail(f"{column.name!r} is listed twice")
        names.append(column.name)
    return tuple(names)
