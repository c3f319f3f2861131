"""Appending a file's rows in chunks, published by one snapshot.

pyiceberg's ``Transaction.append`` makes a snapshot per call: a load appending chunk by
chunk left one snapshot per chunk in the table's history, each an earlier part of the
same file (time travel to one showed half a file), and wrote a manifest and a manifest
list per chunk. Here each chunk only writes its data files; :meth:`ChunkedAppend.commit`
adds them all in one snapshot, committed atomically, or not at all.

Data files written before a crash are referenced by no snapshot (orphans, as with any
failed Iceberg write); ``santelake`` never reads them.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pyarrow as pa
from pyiceberg.io.pyarrow import _check_pyarrow_schema_compatible, _dataframe_to_data_files
from pyiceberg.table import Table


class ChunkedAppend:
    """Data files of one table written chunk by chunk, then appended in one snapshot."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._uuid = uuid.uuid4()
        self._counter = itertools.count(0)  # file names stay unique across the chunks
        self.data_files: list[Any] = []
        # Data files of the table this snapshot replaces (a row updated in place: copy-on-write).
        self.replaced: list[Any] = []

    @property
    def arrow_schema(self) -> pa.Schema:
        return self.table.schema().as_arrow()

    def write(self, chunk: pa.Table) -> None:
        """Write ``chunk`` (the table's Arrow schema) as data files; nothing is visible yet."""
        if not chunk.num_rows:
            return
        metadata = self.table.metadata
        _check_pyarrow_schema_compatible(metadata.schema(), provided_schema=chunk.schema,
                                         format_version=metadata.format_version)
        self.data_files += _dataframe_to_data_files(table_metadata=metadata, df=chunk, io=self.table.io,
                                                    write_uuid=self._uuid, counter=self._counter)

    def commit(self, properties: dict[str, str]) -> None:
        """Add every data file written (and remove those replaced) in one snapshot carrying ``properties``."""
        transaction = self.table.transaction()
        snapshot = transaction.update_snapshot(snapshot_properties=properties)
        # A merge append merges manifests as the table's properties say (schema/iceberg.py); an
        # overwrite removes the replaced files in the same atomic commit.
        with (snapshot.overwrite() if self.replaced else snapshot.merge_append()) as change:
            for data_file in self.replaced:
                change.delete_data_file(data_file)
            for data_file in self.data_files:
                change.append_data_file(data_file)
        transaction.commit_transaction()
