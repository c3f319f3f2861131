"""Bring a live Iceberg table to its declared schema, refusing changes that would hurt.

Columns are matched by field id, never by name, so a rename is a rename and not a drop
plus an add. Allowed: add an optional column, widen int->long, float->double or a
decimal's precision, rename, change a doc, make a required column optional, drop a column
the file marks ``deprecated: true``, change identifier fields, sort order and table
comment. Refused: any other type change, optional->required, a new required column, a
field id used before, a column missing from the file, a partition change. Every problem is
found before anything is written; a refused evolution changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy.exc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, TableAlreadyExistsError
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.sorting import SortDirection
from pyiceberg.types import (
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    NestedField,
    PrimitiveType,
)

from santelake.schema.errors import SchemaEvolutionError
from santelake.schema.iceberg import (
    COMMENT_PROPERTY,
    create_table,
    sort_field,
    table_properties,
    to_partition_spec,
)
from santelake.schema.model import Column, TableSchema


class ChangeKind(StrEnum):
    CREATE_TABLE = "create table"
    ADD_COLUMN = "add column"
    RENAME_COLUMN = "rename column"
    WIDEN_TYPE = "widen type"
    MAKE_OPTIONAL = "make optional"
    UPDATE_DOC = "update doc"
    DROP_COLUMN = "drop column"
    SET_IDENTIFIER_FIELDS = "set identifier fields"
    SET_SORT_ORDER = "set sort order"
    SET_COMMENT = "set table comment"
    SET_PROPERTIES = "set table properties"


@dataclass(frozen=True)
class Change:
    """One change made (or to be made) to a live table; ``field_id`` is None for table-wide ones."""

    kind: ChangeKind
    field_id: int | None
    detail: str

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.detail}"


def _widens(old: PrimitiveType, new: PrimitiveType) -> bool:
    if isinstance(old, IntegerType):
        return isinstance(new, LongType)
    if isinstance(old, FloatType):
        return isinstance(new, DoubleType)
    if isinstance(old, DecimalType) and isinstance(new, DecimalType):
        # pyiceberg 0.12 does not check the scale itself; a scale change would rescale every stored value.
        return new.scale == old.scale and new.precision > old.precision
    return False


def _where(column: Column) -> str:
    return f"column {column.name!r} (field id {column.field_id}, line {column.line})"


def _compare_column(live: NestedField, column: Column, changes: list[Change], problems: list[str]) -> None:
    where = _where(column)
    if live.field_type != column.type:
        if not isinstance(live.field_type, PrimitiveType) or not _widens(live.field_type, column.type):
            problems.append(
                f"{where}: type {live.field_type} -> {column.type} is not allowed (only int->long, "
                "float->double and a larger decimal precision with the same scale); add a new column "
                "with a new field id instead"
            )
            return
        if not column.deprecated:
            changes.append(
                Change(ChangeKind.WIDEN_TYPE, column.field_id, f"{where}: {live.field_type} -> {column.type}")
            )
    if column.deprecated:
        changes.append(
            Change(
                ChangeKind.DROP_COLUMN, column.field_id, f"{where}: deprecated, table column {live.name!r}"
            )
        )
        return
    if not live.required and column.required:
        problems.append(
            f"{where}: optional -> required is not allowed (rows already written may hold nulls); "
            "keep required: false"
        )
    elif live.required and not column.required:
        changes.append(Change(ChangeKind.MAKE_OPTIONAL, column.field_id, where))
    if live.name != column.name:
        changes.append(Change(ChangeKind.RENAME_COLUMN, column.field_id, f"{where}: from {live.name!r}"))
    if live.doc != column.doc:
        changes.append(Change(ChangeKind.UPDATE_DOC, column.field_id, where))


def _compare_columns(table: Table, declared: TableSchema, changes: list[Change], problems: list[str]) -> None:
    schema = table.schema()
    live = {field.field_id: field for field in schema.fields}
    last_id = table.metadata.last_column_id
    declared_ids = {column.field_id for column in declared.columns}
    for field in schema.fields:
        if field.field_id not in declared_ids:
            problems.append(
                f"column {field.name!r} (field id {field.field_id}) is in the table but not in the file; "
                "to drop it, keep it in the file with deprecated: true"
            )
    added: list[Column] = []
    for column in declared.columns:
        if column.field_id in live:
            _compare_column(live[column.field_id], column, changes, problems)
        elif column.deprecated:
            continue
        elif column.field_id <= last_id:
            problems.append(
                f"{_where(column)}: field id {column.field_id} was used before in this table (its last "
                f"assigned id is {last_id}); old data files would show their values in the new column, "
                f"so give it id {last_id + 1} or higher"
            )
        elif column.required:
            problems.append(
                f"{_where(column)}: a new column must be required: false (existing rows have no value)"
            )
        else:
            added.append(column)
    added.sort(key=lambda column: column.field_id)
    expected = list(range(last_id + 1, last_id + 1 + len(added)))
    if [column.field_id for column in added] != expected:
        problems.append(
            f"new columns {', '.join(repr(c.name) for c in added)} must take field ids "
            f"{', '.join(map(str, expected))}: a table gives new columns the ids after its last ({last_id})"
        )
    for column in added:
        changes.append(Change(ChangeKind.ADD_COLUMN, column.field_id, f"{_where(column)}: {column.type}"))


def _compare_table(table: Table, declared: TableSchema, changes: list[Change], problems: list[str]) -> None:
    schema = table.schema()
    live_spec = [(field.source_id, str(field.transform)) for field in table.spec().fields]
    wanted_spec = [(field.source_id, str(field.transform)) for field in to_partition_spec(declared).fields]
    if live_spec != wanted_spec:
        problems.append(
            f"partition spec {_describe_spec(schema, live_spec)} -> {_describe_spec(schema, wanted_spec)} "
            "is not applied automatically: it changes the layout of new data; plan it as a reviewed migration"
        )
    if set(schema.identifier_field_names()) != set(declared.identifier_fields):
        changes.append(
            Change(ChangeKind.SET_IDENTIFIER_FIELDS, None, ", ".join(declared.identifier_fields) or "(none)")
        )
    wanted_sort = [sort_field(declared, field) for field in declared.sort_by]
    if list(table.sort_order().fields) != wanted_sort:
        described = ", ".join(
            f"{f.column} {'desc' if f.descending else 'asc'} nulls {'first' if f.nulls_first else 'last'}"
            for f in declared.sort_by
        )
        changes.append(Change(ChangeKind.SET_SORT_ORDER, None, described or "(unsorted)"))
    if table.properties.get(COMMENT_PROPERTY) != declared.doc:
        changes.append(Change(ChangeKind.SET_COMMENT, None, declared.full_name))
    stale = sorted(key for key, value in table_properties(declared).items()
                   if key != COMMENT_PROPERTY and table.properties.get(key) != value)
    if stale:
        changes.append(Change(ChangeKind.SET_PROPERTIES, None, ", ".join(stale)))


def _describe_spec(schema: Schema, spec: list[tuple[int, str]]) -> str:
    names = {field.field_id: field.name for field in schema.fields}
    return "[" + ", ".join(f"{transform}({names.get(source, source)})" for source, transform in spec) + "]"


def plan_evolution(table: Table, declared: TableSchema) -> tuple[Change, ...]:
    """The changes that would bring ``table`` to ``declared``; raise if any is refused."""
    changes: list[Change] = []
    problems: list[str] = []
    _compare_columns(table, declared, changes, problems)
    _compare_table(table, declared, changes, problems)
    if problems:
        raise SchemaEvolutionError(declared.path, declared.full_name, problems)
    return tuple(changes)


def evolve(table: Table, declared: TableSchema) -> tuple[Change, ...]:
    """Apply every change of plan_evolution in one commit and return them (empty: nothing to do)."""
    changes = plan_evolution(table, declared)
    if not changes:
        return changes
    kinds = {change.kind for change in changes}
    columns = {column.field_id: column for column in declared.columns}
    live_names = {field.field_id: field.name for field in table.schema().fields}
    with table.transaction() as transaction:
        with transaction.update_schema() as update:
            for change in changes:
                if change.field_id is None:
                    continue
                column, live_name = columns[change.field_id], live_names.get(change.field_id, "")
                match change.kind:
                    case ChangeKind.DROP_COLUMN:
                        update.delete_column(live_name)
                    case ChangeKind.WIDEN_TYPE:
                        update.update_column(live_name, field_type=column.type)
                    case ChangeKind.MAKE_OPTIONAL:
                        update.make_column_optional(live_name)
                    case ChangeKind.UPDATE_DOC:
                        update.update_column(live_name, doc=column.doc)
                    case ChangeKind.RENAME_COLUMN:
                        update.rename_column(live_name, column.name)
                    case ChangeKind.ADD_COLUMN:
                        update.add_column(column.name, column.type, doc=column.doc, required=False)
            if ChangeKind.SET_IDENTIFIER_FIELDS in kinds:
                update.set_identifier_fields(*declared.identifier_fields)
        if ChangeKind.SET_SORT_ORDER in kinds:
            with transaction.update_sort_order() as order:
                for field in declared.sort_by:
                    wanted = sort_field(declared, field)
                    add = order.desc if wanted.direction is SortDirection.DESC else order.asc
                    add(field.column, wanted.transform, wanted.null_order)
        if kinds & {ChangeKind.SET_COMMENT, ChangeKind.SET_PROPERTIES}:
            transaction.set_properties(table_properties(declared))
    return changes


def ensure_table(catalog: Catalog, declared: TableSchema) -> tuple[Table, tuple[Change, ...]]:
    """Create the table if it does not exist, else evolve it; return it with the changes made."""
    if not catalog.table_exists(declared.identifier):
        try:
            table = create_table(catalog, declared)
            return table, (Change(ChangeKind.CREATE_TABLE, None, declared.full_name),)
        except (TableAlreadyExistsError, CommitFailedException, sqlalchemy.exc.IntegrityError):
            # Another process created it since (the first loads of two sources record in one ops
            # table): use that one. Anything else is raised.
            if not catalog.table_exists(declared.identifier):
                raise
    table = catalog.load_table(declared.identifier)
    return table, evolve(table, declared)
