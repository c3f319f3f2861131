"""Reading a landed file in Arrow record batches, as its schema file declares.

CSV values are read as text (the schema's transforms parse them, so a bad value is a row to
quarantine, not a crash), but for the columns Arrow's CSV reader parses exactly as the
transforms would (integers kept as they are, ISO dates): those are read typed, which is
cheaper, and if one value fails to parse the rest of the file is read again as text from
the first row not yet handed out, so the transforms name the bad rows. Parquet is read as
written. Memory stays bounded by the block
size, whatever the file's size. Every structural fault names the file, and the line where
one is known.
"""

from __future__ import annotations

import codecs
import queue
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pyiceberg.types import DateType, IntegerType, LongType

from santelake.ingest.errors import SourceFileError
from santelake.schema import SourceFormat, TableSchema, Transform

BLOCK_BYTES = 4 << 20
_T = TypeVar("_T")


def _check_header(path: Path, found: list[str], declared: TableSchema) -> None:
    """The header holds each declared raw column once and nothing else. Messages name the
    declared columns and the header's positions, never the file's text."""
    expected = list(declared.raw_columns)
    missing = [c for c in expected if c not in found]
    unexpected = [position for position, c in enumerate(found, 1) if c not in expected]
    if len(found) == 1 and len(expected) > 1:
        delimiter = declared.source.delimiter if declared.source else None
        raise SourceFileError(path, f"the header has one column; expected {len(expected)} separated by "
                              f"{delimiter!r} (wrong delimiter, or not a CSV file?)", line=1)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} undeclared column(s), at header position(s) "
                         f"{', '.join(map(str, unexpected[:10]))}")
        raise SourceFileError(path, "; ".join(parts) + f" (declared in {declared.path})", line=1)
    if len(set(found)) != len(found):
        raise SourceFileError(path, "a column name appears twice in the header", line=1)


# What an extract may be wrapped in, by its first bytes (not its name, which may say .csv).
_COMPRESSIONS = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd"}
_PARQUET_MAGIC = b"PAR1"
HEADER_BYTES = 1 << 20


def compression_of(path: Path) -> str | None:
    """``gzip``, ``zstd`` or None, from the file's first bytes."""
    with path.open("rb") as handle:
        magic = handle.read(4)
    return next((name for prefix, name in _COMPRESSIONS.items() if magic.startswith(prefix)), None)


# How much larger a compressed extract is once decompressed, for sizing what scales with it
# (CSV extracts of the synthetic sources shrink 5 to 8 times under gzip or zstd).
COMPRESSION_RATIO = 8


def content_bytes(path: Path) -> int:
    """The file's size once decompressed, estimated for a compressed file (never read whole)."""
    size = path.stat().st_size
    return size * COMPRESSION_RATIO if compression_of(path) else size


def _open(path: Path, compression: str | None) -> pa.NativeFile:
    """The file's bytes, decompressed as they are read."""
    return pa.input_stream(str(path), compression=compression)


def _first_line(path: Path, encoding: str, compression: str | None) -> tuple[str, bool]:
    """The header line, and whether the file starts with a UTF-8 byte-order mark (then it is UTF-8)."""
    try:
        with _open(path, compression) as stream:
            raw = stream.read(HEADER_BYTES)
    except OSError as exc:
        raise SourceFileError(path, f"cannot read the file as {compression or 'plain'} data") from exc
    if raw.startswith(_PARQUET_MAGIC):
        raise SourceFileError(path, "this is a Parquet file, but the source is declared as CSV", line=1)
    bom = raw.startswith(codecs.BOM_UTF8)
    if bom:
        raw, encoding = raw[len(codecs.BOM_UTF8):], "utf-8"
    line, newline, _ = raw.partition(b"\n")
    if not raw:
        raise SourceFileError(path, "the file is empty (not even a header)")
    if not newline and len(raw) >= HEADER_BYTES - len(codecs.BOM_UTF8):
        raise SourceFileError(path, "the header line is longer than 1 MiB", line=1)
    try:
        return line.decode(encoding).rstrip("\r"), bom
    except UnicodeDecodeError as exc:
        raise SourceFileError(path, f"the header is not valid {encoding} (byte {exc.start})", line=1) from exc


_ARROW_ROW = re.compile(r"[Rr]ow #?(\d+)")


def _arrow_line(exc: Exception) -> int | None:
    match = _ARROW_ROW.search(str(exc))
    return int(match.group(1)) if match else None


def typed_columns(declared: TableSchema) -> dict[str, pa.DataType]:
    """The raw columns read typed: each lake column made from one keeps it as an integer, or parses an ISO date.

    Arrow's CSV reader and the text path (trim, then Arrow's cast) take the same values to
    the same result for these; tests hold the two to it, value by value.
    """
    kinds: dict[str, pa.DataType | None] = {}
    for column in declared.lake_columns:
        if column.source is None:
            continue
        kind: pa.DataType | None = None
        if column.transforms == (Transform.IDENTITY,) and isinstance(column.type, IntegerType):
            kind = pa.int32()
        elif column.transforms == (Transform.IDENTITY,) and isinstance(column.type, LongType):
            kind = pa.int64()
        elif column.transforms == (Transform.PARSE_DATE_ISO,) and isinstance(column.type, DateType):
            kind = pa.date32()
        # A raw column read by two lake columns is typed only if both want the same type.
        kinds[column.source] = kind if kinds.get(column.source, kind) == kind else None
    return {name: kind for name, kind in kinds.items() if kind is not None}


def as_text(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Raw values as text: a typed column's values in their canonical form (``12``, ``2024-09-22``)."""
    return values if pa.types.is_string(values.type) else values.cast(pa.string())


class _TypedValueFailed(Exception):
    """A value of a column read typed did not parse: read the rest as text."""


_CONVERSION = re.compile(r"CSV column #(\d+): CSV conversion error to (?!string)")


def csv_batches(path: Path, declared: TableSchema, *, typed: bool = True) -> Iterator[pa.RecordBatch]:
    source = declared.source
    assert source is not None and source.delimiter is not None
    encoding = codecs.lookup(source.encoding or "utf-8").name
    compression = compression_of(path)
    header_line, bom = _first_line(path, encoding, compression)
    if bom:
        encoding = "utf-8"  # a byte-order mark says what the file is, whatever its declaration
    header = header_line.split(source.delimiter)
    _check_header(path, header, declared)
    types = typed_columns(declared) if typed else {}
    rows = 0
    while True:
        try:
            for batch in _csv_reader(path, compression, header, encoding, source.delimiter, types, skip=rows):
                rows += batch.num_rows
                yield batch
        except _TypedValueFailed:
            types = {}  # once per file at most
            continue
        break
    if rows == 0:
        raise SourceFileError(path, "the file has a header but no rows", line=2)


def _csv_reader(path: Path, compression: str | None, header: list[str], encoding: str, delimiter: str,
                types: dict[str, pa.DataType], skip: int) -> Iterator[pa.RecordBatch]:
    """The file's batches after its first ``skip`` rows, ``types`` typed and the other columns as text."""
    read = pacsv.ReadOptions(block_size=BLOCK_BYTES, encoding=encoding if encoding != "utf-8" else "utf8")
    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False)
    convert = pacsv.ConvertOptions(
        column_types={name: types.get(name, pa.string()) for name in header}, strings_can_be_null=True,
        null_values=[""], check_utf8=True,
    )

    def failed(exc: pa.ArrowInvalid) -> Exception:
        conversion = _CONVERSION.search(str(exc))
        if conversion and types and header[int(conversion.group(1))] in types:
            return _TypedValueFailed()
        return SourceFileError(path, _explain(exc, encoding), line=_arrow_line(exc))

    try:
        reader = pacsv.open_csv(_open(path, compression), read_options=read, parse_options=parse,
                                convert_options=convert)
    except pa.ArrowInvalid as exc:
        raise failed(exc) from exc
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            raise failed(exc) from exc
        if skip >= batch.num_rows:
            skip -= batch.num_rows
            continue
        if skip:
            batch, skip = batch.slice(skip), 0
        yield batch


_COLUMN_COUNT = re.compile(r"Expected (\d+) columns, got (\d+)")


def _explain(exc: Exception, encoding: str) -> str:
    """Arrow's complaint in santelake's words: Arrow quotes the row's text, which must not leave the loader."""
    text = str(exc)
    if "straddling" in text or "straddle" in text:
        return f"a line is longer than the {BLOCK_BYTES >> 20} MiB read block (a corrupt or unsplit file?)"
    if "UTF8" in text or "utf8" in text.lower():
        return f"the file is not valid {encoding}"
    counts = _COLUMN_COUNT.search(text)
    if counts:
        return (f"a row has {counts.group(2)} column(s) where the header has {counts.group(1)} "
                "(truncated, or the delimiter appears unquoted in a value)")
    return "the file cannot be parsed as CSV"


def open_parquet(path: Path) -> pq.ParquetFile:
    """A Parquet file read in 1 MiB pieces, never whole: by default Arrow buffers the column
    chunks of every row group it reads ahead, which held 2 GB for a 1.8 GB file of many row
    groups (and ran slower)."""
    return pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)


def parquet_batches(path: Path, declared: TableSchema) -> Iterator[pa.RecordBatch]:
    compression = compression_of(path)
    if compression is not None:
        raise SourceFileError(path, f"a {compression}-compressed Parquet file: land Parquet extracts as written "
                              "(Parquet compresses its own pages)")
    try:
        parquet = open_parquet(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceFileError(path, f"not a readable Parquet file: {exc}") from exc
    _check_header(path, parquet.schema_arrow.names, declared)
    if parquet.metadata.num_rows == 0:
        raise SourceFileError(path, "the file has no rows")
    try:
        yield from parquet.iter_batches(batch_size=131_072)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceFileError(path, f"unreadable Parquet data: {exc}") from exc


def batches(path: Path, declared: TableSchema) -> Iterator[pa.RecordBatch]:
    """The raw record batches of ``path``; raises SourceFileError for a structural fault."""
    if declared.source is None:
        raise SourceFileError(path, f"{declared.full_name} has no source in {declared.path}")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise SourceFileError(path, "not a regular file (a link, a folder or a device is never read)")
    if not path.is_file():
        raise SourceFileError(path, "no such file")
    if declared.source.format == SourceFormat.PARQUET:
        return parquet_batches(path, declared)
    return csv_batches(path, declared)


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


def read_ahead(items: Iterator[_T], depth: int = 2) -> Iterator[_T]:
    """``items`` produced on a thread of their own, at most ``depth`` ahead of the consumer.

    Arrow parses a CSV block on the thread that asks for it; here that thread is not the
    one pseudonymising the previous block. An error of the producer is raised to the
    consumer where the item would have come; a consumer that stops early stops the producer.
    """
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc))

    producer = threading.Thread(target=produce, name="load-read", daemon=True)
    producer.start()
    try:
        while True:
            item = ready.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        producer.join()
