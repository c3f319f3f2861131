"""Generating every source extract for a number of persons, block by block.

Randomness comes in blocks of PERSONS_PER_BLOCK persons: block ``b`` of table ``t``
draws from its own PCG64 stream seeded with (seed, t, b). A block's rows therefore never
depend on another block, on the order blocks are made in, or on how many blocks a chunk
groups before writing; the output is a function of (seed, scale) alone.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from santelake.synth import general_practice, hospital, outpatient, pharmacy
from santelake.synth.errors import SynthError
from santelake.synth.persons import MAX_PERSONS, PERSONS_PER_BLOCK, Persons, beneficiaries, draw_persons
from santelake.synth.sinks import Sink, open_sink
from santelake.synth.sources import (
    BENEFICIARIES,
    GP_CONSULTATIONS,
    HOSPITAL_STAYS,
    OUTPATIENT_CLAIMS,
    PHARMACY_DISPENSATIONS,
    TABLES,
)

DEFAULT_CHUNK_PERSONS = 5_000
"""About 50,000 outpatient claims and 107,000 rows over all tables per chunk."""

_CARE: Mapping[str, Callable[[np.random.Generator, Persons], pa.Table]] = {
    OUTPATIENT_CLAIMS.name: outpatient.claims,
    PHARMACY_DISPENSATIONS.name: pharmacy.dispensations,
    HOSPITAL_STAYS.name: hospital.stays,
    GP_CONSULTATIONS.name: general_practice.consultations,
}


@dataclass(frozen=True)
class SynthFile:
    table: str
    path: Path
    rows: int
    format: str


@dataclass(frozen=True)
class SynthReport:
    out_dir: Path
    scale: int
    seed: int
    files: tuple[SynthFile, ...]
    seconds: float

    @property
    def rows(self) -> int:
        return sum(file.rows for file in self.files)


def synthesize(
    out_dir: Path,
    *,
    scale: int,
    seed: int,
    chunk_persons: int = DEFAULT_CHUNK_PERSONS,
    progress: Callable[[int], None] | None = None,
) -> SynthReport:
    """Write every table of TABLES into ``out_dir`` for ``scale`` persons.

    ``chunk_persons`` persons (rounded up to whole blocks) are generated, held and written
    at a time; it bounds memory and does not change a single output byte. ``progress``,
    if given, is called with the number of persons written so far after each chunk.
    Files appear under their final names only when every table is complete.
    """
    if not 1 <= scale <= MAX_PERSONS:
        raise SynthError(f"scale must be between 1 and {MAX_PERSONS:,} persons; got {scale}")
    if seed < 0:
        raise SynthError(f"seed must be zero or positive; got {seed}")
    if chunk_persons < 1:
        raise SynthError(f"chunk_persons must be positive; got {chunk_persons}")

    started = time.perf_counter()
    blocks = -(-scale // PERSONS_PER_BLOCK)
    blocks_per_chunk = -(-chunk_persons // PERSONS_PER_BLOCK)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        sinks = _open_sinks(out_dir)
        try:
            for first in range(0, blocks, blocks_per_chunk):
                chunk = range(first, min(first + blocks_per_chunk, blocks))
                for name, table in _chunk_tables(seed, scale, chunk).items():
                    sinks[name].write(table)
                if progress is not None:
                    progress(min(chunk.stop * PERSONS_PER_BLOCK, scale))
        except BaseException:
            for sink in sinks.values():
                sink.abort()
            raise
        for sink in sinks.values():
            sink.commit()
    except OSError as error:
        raise SynthError(f"cannot write the synthetic extracts into {out_dir}: {error}") from error

    return SynthReport(
        out_dir=out_dir,
        scale=scale,
        seed=seed,
        files=tuple(
            SynthFile(table=name, path=sink.path, rows=sink.rows, format=TABLES[name].format)
            for name, sink in sinks.items()
        ),
        seconds=time.perf_counter() - started,
    )


def _open_sinks(out_dir: Path) -> dict[str, Sink]:
    sinks: dict[str, Sink] = {}
    try:
        for source in TABLES.values():
            sinks[source.name] = open_sink(source, out_dir / source.file_name)
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise
    return sinks


def _chunk_tables(seed: int, scale: int, blocks: range) -> dict[str, pa.Table]:
    parts: dict[str, list[pa.Table]] = {name: [] for name in TABLES}
    for block in blocks:
        count = min(PERSONS_PER_BLOCK, scale - block * PERSONS_PER_BLOCK)
        persons = draw_persons(_stream(seed, BENEFICIARIES.name, block), block, count)
        parts[BENEFICIARIES.name].append(beneficiaries(persons))
        for name, generate in _CARE.items():
            parts[name].append(generate(_stream(seed, name, block), persons))
    return {name: pa.concat_tables(tables) for name, tables in parts.items()}


def _stream(seed: int, table: str, block: int) -> np.random.Generator:
    # crc32 of the name, not its position in TABLES, so reordering tables changes nothing.
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(table.encode()), block])))
