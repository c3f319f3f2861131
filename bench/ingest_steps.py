"""CPU of single ingestion steps, alone on one thread, per 10M rows of a synthetic claims file.

Reads the first batches of an outpatient-claims CSV as the loader does (source.batches), then
times, each over several passes:
  - the amount column's decimal checks: the full-scale byte check the loader tries first and
    the regular expression it falls back to, the float route to decimal128, and parse_decimal
    as a whole;
  - the duplicate check's key hashes of the claim ids (13 bytes) and of 64-character
    pseudonyms, and the two ways of reading their 64-bit words: in place for values of one
    length, or copied into a padded matrix (mixed lengths).
The file comes from bench/ingest.py (--work keeps it). No service is needed.

usage: .venv/bin/python bench/ingest_steps.py /tmp/bw/10000000/outpatient_claims.csv [--batches 20] [--passes 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa

from santelake.ingest import dedupe, runner, source
from santelake.pseudonymise import parse


def per_ten_million(label: str, step: Callable[[int], object], batches: int, rows: int, passes: int) -> None:
    began = time.process_time()
    for _ in range(passes):
        for index in range(batches):
            step(index)
    seconds = (time.process_time() - began) / passes / rows * 10_000_000
    print(f"{label:48s} {seconds:7.3f} s of CPU per 10M rows", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("claims", type=Path)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    declared = runner.schemas()["snds.outpatient_claims"]
    read = []
    for batch in source.batches(args.claims, declared):
        read.append(batch)
        if len(read) == args.batches:
            break
    count, rows = len(read), sum(batch.num_rows for batch in read)
    amounts = [batch.column("PRS_PAI_MNT") for batch in read]
    claim_ids = [pa.table({"k": batch.column("FLX_ID")}) for batch in read]
    pseudonyms: list[pa.Table] = []
    start = 0
    for batch in read:
        pseudonyms.append(pa.table({"k": pa.array([f"{i:064x}" for i in range(start, start + batch.num_rows)])}))
        start += batch.num_rows
    print(f"{rows:,} rows in {count} batches of {args.claims}")

    def run(label: str, step: Callable[[int], object]) -> None:
        per_ten_million(label, step, count, rows, args.passes)

    run("amounts: full-scale byte check", lambda i: parse._full_scale_decimals(amounts[i], 12, 2))
    run("amounts: regular expression check", lambda i: parse._plain_decimals(amounts[i], 12, 2))
    run("amounts: float route to decimal128", lambda i: parse._exact_decimals(amounts[i], 12, 2))
    run("amounts: parse_decimal", lambda i: parse.parse_decimal(amounts[i], 12, 2))
    for name, tables in (("claim ids", claim_ids), ("pseudonyms", pseudonyms)):
        buffers = [parse.text_buffers(table["k"].combine_chunks()) for table in tables]
        run(f"{name}: key hashes", partial(_hashes, tables))
        run(f"{name}: words in place", partial(_words_in_place, buffers))
        run(f"{name}: words in a padded matrix", partial(_padded, buffers))


def _hashes(tables: list[pa.Table], index: int) -> object:
    return dedupe.row_hashes(tables[index], ["k"])


def _words_in_place(buffers: list[tuple[np.ndarray, np.ndarray]], index: int) -> object:
    text, offsets = buffers[index]
    return dedupe._equal_length_words(text, len(offsets) - 1, int(offsets[1]))


def _padded(buffers: list[tuple[np.ndarray, np.ndarray]], index: int) -> object:
    return dedupe._padded_words(*buffers[index])


if __name__ == "__main__":
    main()
