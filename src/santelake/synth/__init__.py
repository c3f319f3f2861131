"""Synthetic SNDS-like source extracts: deterministic, streamed, referentially consistent.

``synthesize(out_dir, scale=..., seed=...)`` writes the files TABLES describes; the same
(seed, scale) always gives the same bytes. See docs/synthetic-data.md.
"""

from santelake.synth.errors import SynthError
from santelake.synth.identifiers import nir_key
from santelake.synth.sources import TABLES, ColumnKind, SourceColumn, SourceTable
from santelake.synth.synthesize import SynthFile, SynthReport, synthesize

__all__ = [
    "TABLES",
    "ColumnKind",
    "SourceColumn",
    "SourceTable",
    "SynthError",
    "SynthFile",
    "SynthReport",
    "nir_key",
    "synthesize",
]
