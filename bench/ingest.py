"""Ingestion throughput and peak memory, end to end, beside the floor (and the peer).

For each size it writes a synthetic outpatient-claims file (santelake synth), then runs,
each in a fresh child process so peak resident memory is its own:
  floor      pyarrow: stream the CSV, write Parquet (no checks, no catalog)
  santelake  the loader: read, transform, pseudonymise, rules, GX audit, Iceberg commit
  peer       Trino: INSERT INTO an Iceberg table (the product's catalog, same schema and
             partitioning) SELECT ... FROM the same CSV (a hive catalog with a file
             metastore); dates parsed, decimals cast, but no pseudonymisation, no row rules,
             no duplicate check, no audit. On a bench-only Trino (bench/trino_peer.py) started
             once per run, not the product's; its peak RSS is the JVM's during the INSERT.
--runners picks some of them (all three by default); santelake-no-audit is the loader
without its Great Expectations audit, to show that fixed per-file cost. --memory-limit SIZE runs the
santelake loader inside a memory cgroup of that size (root, cgroup v1 or v2): going over
kills it, so a run that ends proves the load fits (see bench/memlimit.py).
The stack must be up (santelake up). Results print as a table.

usage: .venv/bin/python bench/ingest.py [--rows 1000000 10000000]
                                        [--runners floor santelake santelake-no-audit peer]
                                        [--memory-limit 1.75GiB] [--keep | --work DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import trino_peer
from memlimit import parse_size, run_limited

CHILD = r"""
import json, sys, time, resource
from pathlib import Path
mode, csv_path, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
start = time.perf_counter()
if mode == "floor":
    import pyarrow as pa, pyarrow.csv as pacsv, pyarrow.parquet as pq
    reader = pacsv.open_csv(csv_path, read_options=pacsv.ReadOptions(block_size=16 << 20),
                            parse_options=pacsv.ParseOptions(delimiter=";"))
    writer = None
    rows = 0
    for batch in reader:
        if writer is None:
            writer = pq.ParquetWriter(out / "floor.parquet", batch.schema)
        writer.write_batch(batch)
        rows += batch.num_rows
    writer.close()
    seconds = time.perf_counter() - start
else:
    import dataclasses, uuid
    from santelake.config import load_settings
    from santelake.ingest import runner
    from santelake.runtime.layout import Layout
    from santelake.lake.catalog import open_catalog
    from santelake.runtime.platform import platform_settings
    settings = platform_settings(Layout(load_settings()))
    catalog = open_catalog(settings)
    namespace = "bench_" + uuid.uuid4().hex[:8]
    schemas = {n: dataclasses.replace(d, namespace=namespace) for n, d in runner.schemas().items()}
    from santelake.ingest.load import Loader
    # "santelake-no-audit": the same load without the Great Expectations audit, to show
    # what that fixed per-file work costs (a product load always audits).
    gx_dir = None if mode == "santelake-no-audit" else out / "gx"
    loader = Loader(catalog, runner.pseudonymiser(settings), schemas, gx_dir=gx_dir)
    loader.load("snds.beneficiaries", csv_path.with_name("beneficiaries.csv"))
    start = time.perf_counter()
    result = loader.load("snds.outpatient_claims", csv_path)
    seconds = time.perf_counter() - start
    rows = result.rows_read
    assert result.rows_published == rows, result
    for identifier in catalog.list_tables(namespace):
        catalog.purge_table(identifier)
    catalog.drop_namespace(namespace)
print(json.dumps({"rows": rows, "seconds": seconds,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(mode: str, csv_path: Path, out: Path, limit: int | None = None) -> dict[str, float]:
    command = [sys.executable, "-c", CHILD, mode, str(csv_path), str(out)]
    if limit is None:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    else:
        result, kills = run_limited(command, limit)
        if kills:
            raise SystemExit(f"{mode} went over the memory limit of {limit / (1 << 30):.2f} GiB and was killed")
    if result.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--work", type=Path, default=None,
                        help="synthesise into this folder and keep it; a second run with it reuses the files")
    parser.add_argument("--runners", nargs="+", choices=("floor", "santelake", "santelake-no-audit", "peer"),
                        default=["floor", "santelake", "peer"])
    parser.add_argument("--memory-limit", type=parse_size, default=None,
                        help="run the santelake loader under this hard memory limit (a cgroup), e.g. 1.25GiB")
    args = parser.parse_args()
    from santelake.config import load_settings
    from santelake.runtime.layout import Layout
    from santelake.synth import synthesize

    modes = [mode for mode in ("floor", "santelake", "santelake-no-audit", "peer") if mode in args.runners]
    if args.memory_limit:
        print(f"(santelake runs under a hard memory limit of {args.memory_limit / (1 << 30):.2f} GiB)", flush=True)
    print(f"{'rows':>11} {'file MiB':>9} {'runner':18} {'seconds':>8} {'rows/s':>10} {'peak RSS MiB':>13}")
    with contextlib.ExitStack() as stack:
        peer: trino_peer.BenchTrino | None = None
        for rows in args.rows:
            work = args.work / str(rows) if args.work else Path(tempfile.mkdtemp(prefix="santelake-bench-"))
            try:
                if not (work / "outpatient_claims.csv").exists():
                    # About ten claims per person.
                    work.mkdir(parents=True, exist_ok=True)
                    synthesize(work, scale=max(rows // 10, 1), seed=5)
                csv_path = work / "outpatient_claims.csv"
                size = csv_path.stat().st_size / (1 << 20)
                for mode in modes:
                    if mode == "peer":
                        if peer is None:
                            # Started once, after the first size's other runners, so its start-up
                            # does not share the two cores with them; stopped when the run ends.
                            peer = stack.enter_context(trino_peer.BenchTrino(Layout(load_settings())))
                            print(f"(bench Trino ready in {peer.start_seconds:.1f} s, unpacking "
                                  f"{peer.unpack_seconds:.1f} s)", file=sys.stderr, flush=True)
                        figures = trino_peer.measure(peer, csv_path)
                    else:
                        figures = run(mode, csv_path, work, args.memory_limit if mode != "floor" else None)
                    print(f"{int(figures['rows']):>11,} {size:>9.0f} {mode:18} {figures['seconds']:>8.1f} "
                          f"{figures['rows'] / figures['seconds']:>10,.0f} {figures['peak_rss_mib']:>13.0f}",
                          flush=True)
            finally:
                if not (args.keep or args.work):
                    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
