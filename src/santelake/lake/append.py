"""Appending a file's rows in chunks, published by one snapshot.

pyiceberg's ``Transaction.append`` makes a snapshot per call: a load appending chunk by
chunk left one snapshot per chunk in the table's history, each an earlier part of the
same file (time travel to one showed half a file), and wrote a manifest and a manifest
list per chunk. Here each chunk only writes data files; :meth:`ChunkedAppend.commit`
adds them all in one snapshot, committed atomically, or not at all.

A chunk's rows of one partition go into that partition's open data file, which later chunks
extend (a row group per chunk) until it holds ``file_rows`` rows. pyiceberg's own write made
a file per chunk and partition: a 10M-row claims load over six years wrote 121 files of
about 1.8 MB, each an object store request, a footer, and a manifest entry of its own.

A partition's open file is written to local disk and uploaded whole when it closes (it is
full, or :attr:`ChunkedAppend.data_files` is read, as the commit does): the object store
only ever holds whole files. Data files uploaded before a crash are referenced by no
snapshot (orphans, as with any failed Iceberg write); ``santelake`` never reads them.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.io.fileformat import FileFormatFactory
from pyiceberg.io.pyarrow import (
    PyArrowFileIO,
    _check_pyarrow_schema_compatible,
    _determine_partitions,
    _to_requested_schema,
    pyarrow_to_schema,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.table import Table
from pyiceberg.table.locations import load_location_provider
from pyiceberg.typedef import Record
from pyiceberg.utils.concurrent import ExecutorFactory

# A data file's rows at most. A rewrite (an erasure, a repeat settled) reads a whole file, so
# this bounds its memory: twice a load's chunk (ingest.load.DEFAULT_FLUSH_ROWS).
FILE_ROWS = 1_000_000
UPLOAD_BLOCK = 1 << 20
# The local folder of a writer's open files; the process id after it lets a later load remove
# the folder of a process killed before it could (ingest.dedupe.remove_stale_spills).
LOCAL_PREFIX = "santelake-append-"
PARQUET = FileFormatFactory.get(FileFormat.PARQUET)


@dataclass
class _OpenFile:
    """A data file still written: its partition's rows of the chunks so far."""

    path: str  # where it goes in the table
    local: Path  # where it is written first
    partition: Any  # pyiceberg's PartitionKey, or None for an unpartitioned table
    writer: Any  # pyiceberg's ParquetFormatWriter
    rows: int = 0


class ChunkedAppend:
    """Data files of one table written chunk by chunk, then appended in one snapshot."""

    def __init__(self, table: Table, file_rows: int = FILE_ROWS, spill_dir: Path | None = None) -> None:
        self.table = table
        self.file_rows = file_rows
        # Open files are written to local disk (under ``spill_dir``, $TMPDIR if None) and uploaded
        # whole at their close: an open upload stream to the object store holds a part buffer of
        # Arrow's, about 11 MiB, so six partitions' streams raised a 10M-row load's Arrow peak
        # by 146 MiB where local files raise it by 70-90 MiB (docs/benchmarks.md).
        self._local = tempfile.TemporaryDirectory(prefix=f"{LOCAL_PREFIX}{os.getpid()}-", dir=spill_dir)
        self._local_io = PyArrowFileIO()
        metadata = table.metadata
        self._locations = load_location_provider(table_location=metadata.location,
                                                 table_properties=metadata.properties)
        self._uuid = uuid.uuid4()
        self._counter = itertools.count(0)  # file names stay unique across the chunks
        self._closed: list[Any] = []
        self._open: dict[str, _OpenFile] = {}  # by partition path ("" unpartitioned)
        # Data files of the table this snapshot replaces (a row updated in place: copy-on-write).
        self.replaced: list[Any] = []

    @property
    def arrow_schema(self) -> pa.Schema:
        return self.table.schema().as_arrow()

    @property
    def data_files(self) -> list[Any]:
        """Every data file written so far, each closed first: a file in this list is whole."""
        self._close_all()
        return self._closed

    def write(self, chunk: pa.Table) -> None:
        """Write ``chunk`` (the table's Arrow schema) to data files; nothing is visible yet."""
        if not chunk.num_rows:
            return
        metadata = self.table.metadata
        schema = metadata.schema()
        _check_pyarrow_schema_compatible(schema, provided_schema=chunk.schema, format_version=metadata.format_version)
        if metadata.spec().is_unpartitioned():
            parts: list[tuple[Any, pa.Table]] = [(None, chunk)]
        else:
            parts = [(p.partition_key, p.arrow_table_partition)
                     for p in _determine_partitions(spec=metadata.spec(), schema=schema, arrow_table=chunk)]
        task_schema = pyarrow_to_schema(chunk.schema, name_mapping=schema.name_mapping,
                                        format_version=metadata.format_version)

        def write_part(open_file: _OpenFile, part: pa.Table) -> None:
            batches = [_to_requested_schema(requested_schema=schema, file_schema=task_schema, batch=batch,
                                            include_field_ids=True, format_model=PARQUET)
                       for batch in part.to_batches()]
            open_file.writer.write(pa.Table.from_batches(batches))

        # Each part to a file of its own, on pyiceberg's pool (Parquet encoding leaves the GIL).
        executor = ExecutorFactory.get_or_create()
        written = []
        for partition, part in parts:
            open_file = self._file_for(partition, part.num_rows)
            open_file.rows += part.num_rows
            written.append(executor.submit(write_part, open_file, part))
        for future in written:
            future.result()

    def _file_for(self, partition: Any, rows: int) -> _OpenFile:
        """The partition's open file, or a new one if ``rows`` more would take it past ``file_rows``."""
        key = partition.to_path() if partition is not None else ""
        current = self._open.get(key)
        if current is not None and current.rows + rows > self.file_rows:
            self._closed.append(self._finish(self._open.pop(key)))
            current = None
        if current is None:
            metadata = self.table.metadata
            name = f"00000-{next(self._counter)}-{self._uuid}.parquet"  # as pyiceberg's WriteTask names files
            path = self._locations.new_data_location(data_file_name=name, partition_key=partition)
            local = Path(self._local.name) / name
            writer = PARQUET.create_writer(self._local_io.new_output(str(local)), metadata.schema(),
                                           metadata.properties)
            current = self._open[key] = _OpenFile(path, local, partition, writer)
        return current

    def _finish(self, open_file: _OpenFile) -> Any:
        """Close ``open_file``, upload it, and describe it."""
        statistics = open_file.writer.close()
        size = open_file.local.stat().st_size
        with open(open_file.local, "rb") as source, self.table.io.new_output(open_file.path).create(
                overwrite=True) as target:
            shutil.copyfileobj(source, target, UPLOAD_BLOCK)
        open_file.local.unlink()
        metadata = self.table.metadata
        return DataFile.from_args(
            content=DataFileContent.DATA, file_path=open_file.path, file_format=FileFormat.PARQUET,
            partition=open_file.partition.partition if open_file.partition is not None else Record(),
            file_size_in_bytes=size, sort_order_id=None, spec_id=metadata.default_spec_id,
            equality_ids=None, key_metadata=None, **statistics.to_serialized_dict())

    def _close_all(self) -> None:
        # Uploaded side by side, listed in the order they were opened.
        still_open = list(self._open.values())
        self._open.clear()
        self._closed += ExecutorFactory.get_or_create().map(self._finish, still_open)

    def commit(self, properties: dict[str, str]) -> None:
        """Add every data file written (and remove those replaced) in one snapshot carrying ``properties``."""
        data_files = self.data_files
        transaction = self.table.transaction()
        snapshot = transaction.update_snapshot(snapshot_properties=properties)
        # A merge append merges manifests as the table's properties say (schema/iceberg.py); an
        # overwrite removes the replaced files in the same atomic commit.
        with (snapshot.overwrite() if self.replaced else snapshot.merge_append()) as change:
            for data_file in self.replaced:
                change.delete_data_file(data_file)
            for data_file in data_files:
                change.append_data_file(data_file)
        transaction.commit_transaction()
        self._local.cleanup()
