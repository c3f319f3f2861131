"""The erasure's proof: every object of the warehouse and landing buckets read, none naming the persons.

Each object is read as what it is, not searched as raw bytes alone (a Parquet page or an
Avro block is compressed, so a raw search would find nothing and prove nothing):

- Parquet (data and delete files): every value of every string column, and the minimum and
  maximum each row group's statistics hold;
- Avro (manifests, manifest lists): each block decompressed, then searched; a manifest
  holds column bounds, the first 16 characters of a pseudonym, so a prefix counts too;
- anything else (metadata JSON, landed extracts, gzip or zstd compressed): decompressed by
  its first bytes and searched for the pseudonyms and the NIRs' 13-character bodies;
- a landed extract's NIR-shaped values are also pseudonymised, so a person given by
  pseudonym alone is found in the raw extract too (any extract, even one that is not
  valid for its source).

A hit names the object and what was found there (a pseudonym, a prefix, a NIR), never the
value.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from santelake.pseudonymise import Pseudonymiser
from santelake.pseudonymise.pseudonym import NIR_BODY

PREFIX_CHARS = 16  # what Iceberg keeps of a string as a column bound (truncate(16))
_HEX = re.compile(rb"[0-9a-f]{16,}")
_NIR = re.compile(rb"[0-9AB]{13,15}")
# A NIR's 13-character body where a value starts (not inside a longer run of digits).
_NIR_BODY = re.compile(rb"(?<![0-9])" + NIR_BODY.encode())
_AVRO_MAGIC = b"Obj\x01"
_PARQUET_MAGIC = b"PAR1"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Hit:
    location: str  # s3://bucket/key (and ?versionId= for an older version)
    found: str  # "pseudonym", "pseudonym prefix" or "NIR", with how many


@dataclass
class Proof:
    objects: int = 0
    bytes: int = 0
    hits: list[Hit] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.hits

    def summary(self) -> dict[str, Any]:
        return {"objects_read": self.objects, "bytes_read": self.bytes, "hits": len(self.hits),
                "hit_locations": [f"{h.location}: {h.found}" for h in self.hits]}


class Needles:
    """What is looked for: the pseudonyms (and their bound prefixes) and the NIRs' bodies."""

    def __init__(self, pseudonyms: Iterable[str], nirs: Iterable[str] = ()) -> None:
        self.pseudonyms = frozenset(pseudonyms)
        self.prefixes = frozenset(p[:PREFIX_CHARS] for p in self.pseudonyms)
        self.nirs = frozenset(n.encode() for n in nirs)
        self.as_array = pa.array(sorted(self.pseudonyms), pa.string())

    def in_text(self, data: bytes) -> list[str]:
        """What ``data`` holds of the needles, by kind with counts."""
        full = prefix = nir = 0
        for token in _HEX.findall(data):
            text = token.decode()
            # A run of hex longer than a pseudonym: look at every 64-character window start.
            if any(text[i:i + 64] in self.pseudonyms for i in range(0, max(len(text) - 63, 1))):
                full += 1
            elif len(text) < 64 and text[:PREFIX_CHARS] in self.prefixes and any(
                    p.startswith(text) for p in self.pseudonyms if p[:PREFIX_CHARS] == text[:PREFIX_CHARS]):
                prefix += 1
        if self.nirs:
            nir = sum(1 for token in _NIR.findall(data) if token[:13] in self.nirs)
        return _kinds(full, prefix, nir)

    def in_values(self, values: pa.Array) -> int:
        """How many distinct values of a string array are pseudonyms or NIRs looked for."""
        unique = pc.unique(values.cast(pa.string()) if not pa.types.is_string(values.type) else values)
        count = int(pc.sum(pc.is_in(unique, value_set=self.as_array)).as_py() or 0) if len(self.pseudonyms) else 0
        if self.nirs:
            count += sum(1 for v in unique.to_pylist() if v and v.encode()[:13] in self.nirs)
        return count


def _kinds(full: int, prefix: int, nir: int) -> list[str]:
    return [f"{count} {kind}(s)" for kind, count in (("pseudonym", full), ("pseudonym prefix", prefix), ("NIR", nir))
            if count]


def decompressed(data: bytes) -> bytes:
    """``data`` itself, or its content when it is gzip or zstd compressed."""
    if data.startswith(_GZIP_MAGIC):
        return gzip.decompress(data)
    if data.startswith(_ZSTD_MAGIC):
        import zstandard

        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as reader:
            return reader.read()
    return data


def _avro_long(stream: io.BytesIO) -> int:
    shift = result = 0
    while True:
        byte = stream.read(1)
        if not byte:
            raise EOFError("truncated Avro long")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return (result >> 1) ^ -(result & 1)
        shift += 7


def avro_blocks(data: bytes) -> Iterator[bytes]:
    """The header's metadata and each block of an Avro container file, decompressed."""
    import zlib

    stream = io.BytesIO(data)
    stream.read(len(_AVRO_MAGIC))
    metadata: dict[str, bytes] = {}
    while (count := _avro_long(stream)) != 0:
        if count < 0:
            _avro_long(stream)  # the block's size in bytes
            count = -count
        for _ in range(count):
            key = stream.read(_avro_long(stream)).decode()
            metadata[key] = stream.read(_avro_long(stream))
    yield b"".join(metadata.values())
    codec = metadata.get("avro.codec", b"null").decode()
    stream.read(16)  # the sync marker
    while stream.tell() < len(data):
        _avro_long(stream)  # objects in the block
        block = stream.read(_avro_long(stream))
        stream.read(16)
        if codec == "deflate":
            yield zlib.decompress(block, -15)
        elif codec == "zstandard":
            yield decompressed(block)
        elif codec == "snappy":
            # Raw snappy (the length first, as an unsigned varint), then a CRC-32 of 4 bytes.
            size = shift = position = 0
            while True:
                byte = block[position]
                size |= (byte & 0x7F) << shift
                position += 1
                shift += 7
                if not byte & 0x80:
                    break
            yield pa.decompress(block[:-4], decompressed_size=size, codec="snappy").to_pybytes()
        elif codec == "null":
            yield block
        else:
            raise ValueError(f"Avro codec {codec!r} is not one the proof reads")


def parquet_hits(data: bytes, needles: Needles) -> list[str]:
    reader = pq.ParquetFile(pa.BufferReader(data))
    values = 0
    bounds: list[str] = []
    metadata = reader.metadata
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            stats = row_group.column(index).statistics
            if stats is not None and stats.has_min_max and isinstance(stats.min, (str, bytes)):
                for bound in (stats.min, stats.max):
                    text = bound.encode() if isinstance(bound, str) else bound
                    bounds.extend(needles.in_text(text))
        table = reader.read_row_group(group)
        for column in table.columns:
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) \
                    or pa.types.is_dictionary(column.type):
                values += needles.in_values(column.combine_chunks())
    found = [f"{values} value(s)"] if values else []
    return found + [f"column statistics: {b}" for b in bounds]


def object_hits(data: bytes, needles: Needles) -> list[str]:
    """What one object holds of the needles (empty: nothing)."""
    if data.startswith(_PARQUET_MAGIC):
        return parquet_hits(data, needles)
    if data.startswith(_AVRO_MAGIC):
        found: list[str] = []
        for block in avro_blocks(data):
            found += needles.in_text(block)
        return found
    return needles.in_text(decompressed(data))


def _strings(data: bytes) -> bytes:
    """Every string value of a Parquet file, a line each (a landed Parquet extract's cells)."""
    reader = pq.ParquetFile(pa.BufferReader(data))
    parts = []
    for group in range(reader.metadata.num_row_groups):
        for column in reader.read_row_group(group).columns:
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                values = pc.unique(column.combine_chunks()).drop_null()
                parts.append("\n".join(values.to_pylist()).encode())
    return b"\n".join(parts)


def landed_hits(data: bytes, needles: Needles, pseudonymiser: Pseudonymiser) -> list[str]:
    """The persons a landed extract names by NIR, found by pseudonymising every NIR-shaped value in it.

    Read as text (decompressed) or, for Parquet, as its string cells: no header or declared
    column is needed, so a rejected, broken extract is read as surely as a good one.
    """
    text = _strings(data) if data.startswith(_PARQUET_MAGIC) else decompressed(data)
    bodies = sorted({token.decode() for token in _NIR_BODY.findall(text)})
    if not bodies or not needles.pseudonyms:
        return []
    pseudonyms = pseudonymiser.pseudonymise_array(pa.array(bodies, pa.string()))
    found = int(pc.sum(pc.is_in(pseudonyms, value_set=needles.as_array)).as_py() or 0)
    return [f"{found} person(s) by their NIR"] if found else []


def scan_bucket(client: Any, bucket: str, needles: Needles, proof: Proof, *, prefix: str = "",
                versions: bool = False, landed: Callable[[str, bytes], list[str]] | None = None) -> None:
    """Read every object (every version too when ``versions``) under ``prefix`` into ``proof``."""
    for item in client.list_objects(bucket, prefix=prefix or None, recursive=True, include_version=versions):
        if item.is_delete_marker:
            continue
        latest = str(item.is_latest).lower() == "true"  # minio-py gives the XML's text, "true" or "false"
        version = item.version_id if versions and not latest else None
        response = client.get_object(bucket, item.object_name, version_id=version)
        try:
            data = response.read()
        finally:
            response.close()
            response.release_conn()
        proof.objects += 1
        proof.bytes += len(data)
        location = f"s3://{bucket}/{item.object_name}" + (f"?versionId={version}" if version else "")
        found = object_hits(data, needles)
        if landed is not None:
            found += landed(item.object_name, data)
        if found:
            proof.hits.append(Hit(location, "; ".join(found)))
