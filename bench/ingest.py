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
--repeat N runs the runners N times in turn (floor, santelake, floor, santelake, ...), so a
busy moment of the host weighs on both, and prints each runner's median and the median of
each round's santelake/floor share: on two shared cores single runs vary by 20-30%.
The stack must be up (santelake up). Results print as a table.

--lake-rows N loads into a claims table already holding N rows of other claims, so the load's
identity check across loads (ingest/identity.py) reads them; its own time prints apart. The
earlier claims' ids sort after the file's (later extracts, later ids), so the check skips their
data files by their bounds; --lake-overlap interleaves them with the file's, the worst case,
where no earlier data file is skipped by its bounds. The earlier claims come with the runs of
the table's key index that loads would have written (ingest/keyindex.py), one per 10M rows;
--lake-unindexed leaves them out, so every earlier data file's key column is read.
--key-cache says where the load finds those runs: "warm" (the default: decoded on the loader's
disk, as a loader that wrote or read them before has them; the product's own setting), "cold"
(its cache emptied first: read from the object store, and kept), "off" (read from the store,
not kept).

usage: .venv/bin/python bench/ingest.py [--rows 1000000 10000000] [--lake-rows 100000000] [--lake-overlap]
                                        [--lake-unindexed] [--key-cache warm|cold|off]
                                        [--runners floor santelake santelake-no-audit peer]
                                        [--memory-limit 1.75GiB] [--repeat 5] [--keep | --work DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
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
lake_rows = int(sys.argv[4]) if len(sys.argv) > 4 else 0
overlap = len(sys.argv) > 5 and sys.argv[5] == "overlap"
cache_mode = sys.argv[8] if len(sys.argv) > 8 else "warm"
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
    from santelake.ingest.keyindex import RunCache
    from santelake.settings import KEY_CACHE_BYTES
    import shutil
    cache_dir = out / "key-cache"
    shutil.rmtree(cache_dir, ignore_errors=True)
    key_cache = RunCache(cache_dir, 0 if cache_mode == "off" else KEY_CACHE_BYTES)
    # "santelake-no-audit": the same load without the Great Expectations audit, to show
    # what that fixed per-file work costs (a product load always audits).
    gx_dir = None if mode == "santelake-no-audit" else out / "gx"
    loader = Loader(catalog, runner.pseudonymiser(settings), schemas, gx_dir=gx_dir, key_cache=key_cache)
    loader.load("snds.beneficiaries", csv_path.with_name("beneficiaries.csv"))
    if lake_rows:
        # Written by a process of its own, so this one's peak memory is the load's.
        import subprocess
        subprocess.run([sys.executable, "-c", sys.argv[6], namespace, str(lake_rows),
                        "overlap" if overlap else "apart", sys.argv[7], str(cache_dir)], check=True)
        if cache_mode == "cold":
            shutil.rmtree(cache_dir, ignore_errors=True)
    import santelake.ingest.load as load_module
    settled = {"seconds": 0.0}
    real_settle = load_module.settle
    def timed_settle(*args, **kwargs):
        began = time.perf_counter()
        try:
            return real_settle(*args, **kwargs)
        finally:
            settled["seconds"] += time.perf_counter() - began
    load_module.settle = timed_settle
    start = time.perf_counter()
    result = loader.load("snds.outpatient_claims", csv_path)
    seconds = time.perf_counter() - start
    rows = result.rows_read
    # Persons in the opposition register (an erasure ran on this stack) are left out, not refused.
    assert result.rows_published + result.rows_opposed == rows and not result.rows_refused, result
    for identifier in catalog.list_tables(namespace):
        catalog.purge_table(identifier)
    catalog.drop_namespace(namespace)
print(json.dumps({"rows": rows, "seconds": seconds, "identity_seconds": settled["seconds"] if mode != "floor" else 0.0,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


PREFILL = r"""
# Earlier loads' claims (other keys), written straight as data files into the bench's
# namespace: the lake the load's identity check reads (ingest/identity.py).
import dataclasses, sys
import numpy as np, pyarrow as pa
from santelake.config import load_settings
from santelake.ingest import runner
from santelake.lake.append import ChunkedAppend
from santelake.lake.catalog import open_catalog
from santelake.runtime.layout import Layout
from santelake.runtime.platform import platform_settings
from santelake.schema import ensure_table, to_arrow_schema
from santelake.synth.columns import plain_claims
namespace, lake_rows, overlap = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "overlap"
catalog = open_catalog(platform_settings(Layout(load_settings())))
declared = dataclasses.replace(runner.schemas()["snds.outpatient_claims"], namespace=namespace)
table = ensure_table(catalog, declared)[0]
schema = to_arrow_schema(declared)
persons = pa.array([f"{i:064x}" for i in range(10_000)])
appender, chunk, done = ChunkedAppend(table), 2_000_000, 0
# The key index's runs a loader would have written (ingest/keyindex.py), one per 10M rows as
# from loads of that size; "unindexed" leaves them out (a lake written before the index).
from santelake.ingest.dedupe import row_hashes
from pathlib import Path
from santelake.ingest.keyindex import KeyIndex, RunCache, as_int64, sorted_unique
from santelake.settings import KEY_CACHE_BYTES
indexed, run_hashes, run_start = sys.argv[4] == "indexed", [], 0
# Kept in the load's key cache as a loader writing them would (the load empties it for "cold").
cache = RunCache(Path(sys.argv[5]), KEY_CACHE_BYTES)
def write_run():
    global run_hashes, run_start
    if indexed and run_hashes:
        KeyIndex(table, cache).write([f.file_path for f in appender.data_files[run_start:]],
                              [sorted_unique(as_int64(np.concatenate(run_hashes)))])
    run_hashes, run_start = [], len(appender.data_files)
while done < lake_rows:
    n = min(chunk, lake_rows - done)
    ids = np.arange(done, done + n)
    # Earlier claims' ids sort after the file's ("L..."), as later extracts carry later ids: the
    # check skips every earlier file by its bounds. With overlap they interleave with the file's
    # ("<13 digits>x"): every earlier file is read.
    claim_ids = pa.array(np.char.add(np.char.zfill(ids.astype(str), 13), "x") if overlap
                         else np.char.add("L", np.char.zfill(ids.astype(str), 12)))
    rows = plain_claims(ids, claim_ids, persons.take(pa.array(ids % 10_000)))
    appender.write(rows.select(schema.names).cast(schema))
    if indexed:
        run_hashes.append(row_hashes(rows, list(declared.identifier_fields)))
    done += n
    if done % 10_000_000 == 0:
        write_run()
write_run()
appender.commit({})
print(f"(lake of {lake_rows:,} claims written)", file=sys.stderr, flush=True)
"""


def run(mode: str, csv_path: Path, out: Path, limit: int | None = None, lake_rows: int = 0,
        overlap: bool = False, indexed: bool = True, cache: str = "warm") -> dict[str, float]:
    command = [sys.executable, "-c", CHILD, mode, str(csv_path), str(out), str(lake_rows),
               "overlap" if overlap else "apart", PREFILL, "indexed" if indexed else "unindexed", cache]
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
    parser.add_argument("--lake-rows", type=int, default=0,
                        help="the santelake runners load into a claims table already holding this many rows "
                             "(other keys): the cost of the identity check across loads")
    parser.add_argument("--lake-overlap", action="store_true",
                        help="the table's keys interleave with the file's, so no earlier data file is skipped")
    parser.add_argument("--lake-unindexed", action="store_true",
                        help="the table's files have no run of the key index (written before it): the check reads "
                             "their keys, and gives them a run")
    parser.add_argument("--key-cache", choices=("warm", "cold", "off"), default="warm",
                        help="the key index's runs on the loader's disk already (warm), emptied before the load "
                             "(cold), or not kept (off)")
    parser.add_argument("--memory-limit", type=parse_size, default=None,
                        help="run the santelake loader under this hard memory limit (a cgroup), e.g. 1.25GiB")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the runners this many times in turn; medians print after each size")
    args = parser.parse_args()
    from santelake.config import load_settings
    from santelake.runtime.layout import Layout
    from santelake.synth import synthesize

    modes = [mode for mode in ("floor", "santelake", "santelake-no-audit", "peer") if mode in args.runners]
    if args.memory_limit:
        print(f"(santelake runs under a hard memory limit of {args.memory_limit / (1 << 30):.2f} GiB)", flush=True)
    if args.lake_rows:
        print(f"(the santelake runners load into a table of {args.lake_rows:,} rows, keys "
              f"{'interleaved with' if args.lake_overlap else 'apart from'} the file's; key cache {args.key_cache})",
              flush=True)
    print(f"{'rows':>11} {'file MiB':>9} {'runner':18} {'seconds':>8} {'rows/s':>10} {'peak RSS MiB':>13} "
          f"{'identity s':>10}")
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
                seconds: dict[str, list[float]] = {mode: [] for mode in modes}
                for _ in range(args.repeat):
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
                            figures = run(mode, csv_path, work, args.memory_limit if mode != "floor" else None,
                                          args.lake_rows if mode != "floor" else 0, args.lake_overlap,
                                          not args.lake_unindexed, args.key_cache)
                        seconds[mode].append(figures["seconds"])
                        print(f"{int(figures['rows']):>11,} {size:>9.0f} {mode:18} {figures['seconds']:>8.1f} "
                              f"{figures['rows'] / figures['seconds']:>10,.0f} {figures['peak_rss_mib']:>13.0f} "
                              f"{figures.get('identity_seconds', 0.0):>10.1f}",
                              flush=True)
                if args.repeat > 1:
                    medians = ", ".join(f"{mode} {statistics.median(values):.1f} s" for mode, values in seconds.items())
                    print(f"  medians of {args.repeat} rounds: {medians}")
                    if "floor" in seconds and "santelake" in seconds:
                        shares = sorted(floor / mine for floor, mine in zip(seconds["floor"], seconds["santelake"],
                                                                            strict=True))
                        listed = ", ".join(f"{share:.0%}" for share in shares)
                        print(f"  santelake's speed as a share of the floor's, per round: {listed}; "
                              f"median {statistics.median(shares):.0%}")
            finally:
                if not (args.keep or args.work):
                    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
