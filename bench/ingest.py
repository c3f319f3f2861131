"""Ingestion throughput and peak memory, end to end, beside the floor (and the peer).

For each size it writes a synthetic outpatient-claims file (santelake synth), then runs,
each in a fresh child process so peak resident memory is its own:
  floor      pyarrow: stream the CSV, write Parquet (no checks, no catalog)
  santelake  the loader: read, transform, pseudonymise, rules, GX audit, Iceberg commit
  peer       Trino: INSERT INTO an Iceberg table SELECT ... FROM the same CSV on S3 (hive
             catalog with a file metastore), only with --peer (needs the hive plugin)
The stack must be up (santelake up). Results print as a table.

usage: .venv/bin/python bench/ingest.py [--rows 1000000 10000000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

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
else:
    import dataclasses, uuid
    from santelake.config import load_settings
    from santelake.ingest import runner
    from santelake.runtime.layout import Layout
    from santelake.lake.catalog import open_catalog
    layout = Layout(load_settings())
    catalog = open_catalog(layout)
    namespace = "bench_" + uuid.uuid4().hex[:8]
    schemas = {n: dataclasses.replace(d, namespace=namespace) for n, d in runner.schemas().items()}
    from santelake.ingest.load import Loader
    loader = Loader(catalog, runner.pseudonymiser(layout), schemas, gx_dir=out / "gx")
    loader.load("snds.beneficiaries", csv_path.with_name("beneficiaries.csv"))
    start = time.perf_counter()
    result = loader.load("snds.outpatient_claims", csv_path)
    rows = result.rows_read
    assert result.rows_published == rows, result
    for identifier in catalog.list_tables(namespace):
        catalog.purge_table(identifier)
    catalog.drop_namespace(namespace)
seconds = time.perf_counter() - start
print(json.dumps({"rows": rows, "seconds": seconds,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(mode: str, csv_path: Path, out: Path) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-c", CHILD, mode, str(csv_path), str(out)], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    from santelake.synth import synthesize

    print(f"{'rows':>11} {'file MiB':>9} {'runner':10} {'seconds':>8} {'rows/s':>10} {'peak RSS MiB':>13}")
    for rows in args.rows:
        work = Path(tempfile.mkdtemp(prefix="santelake-bench-"))
        try:
            # About ten claims per person.
            synthesize(work, scale=max(rows // 10, 1), seed=5)
            csv_path = work / "outpatient_claims.csv"
            size = csv_path.stat().st_size / (1 << 20)
            for mode in ("floor", "santelake"):
                figures = run(mode, csv_path, work)
                print(f"{int(figures['rows']):>11,} {size:>9.0f} {mode:10} {figures['seconds']:>8.1f} "
                      f"{figures['rows'] / figures['seconds']:>10,.0f} {figures['peak_rss_mib']:>13.0f}", flush=True)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)



if __name__ == "__main__":
    main()
