"""Table schemas: ``iceberg_schemas/<namespace>/<table>.yaml`` is the one source of truth.

``loader`` reads and checks the files, ``model`` is what they declare, ``iceberg`` turns a
declaration into pyiceberg and pyarrow objects and creates tables, ``evolution`` brings a
live table to its declaration or refuses with the reason.
"""

from santelake.schema.errors import SchemaEvolutionError, SchemaFileError
from santelake.schema.evolution import Change, ChangeKind, ensure_table, evolve, plan_evolution
from santelake.schema.iceberg import (
    create_table,
    table_properties,
    to_arrow_schema,
    to_iceberg_schema,
    to_partition_spec,
    to_sort_order,
)
from santelake.schema.loader import load_schemas, load_table_schema, sources
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

__all__ = [
    "Change",
    "ChangeKind",
    "Column",
    "DroppedSourceColumn",
    "OnRepeat",
    "PartitionField",
    "SchemaEvolutionError",
    "SchemaFileError",
    "Sensitivity",
    "SortField",
    "SourceFile",
    "SourceFormat",
    "TableSchema",
    "Transform",
    "create_table",
    "ensure_table",
    "evolve",
    "load_schemas",
    "load_table_schema",
    "plan_evolution",
    "sources",
    "table_properties",
    "to_arrow_schema",
    "to_iceberg_schema",
    "to_partition_spec",
    "to_sort_order",
]
