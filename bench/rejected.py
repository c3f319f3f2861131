"""A file whose every row breaks a rule is rejected cleanly under a hard memory limit.

It copies the bench's synthetic claims file with every care date made impossible
(31 February), then loads it with the santelake loader inside a memory cgroup: the load
must end in its rejection (every row quarantined, nothing published), not in the kernel
killing it. Prints the time to the rejection and the peak resident memory.

usage: .venv/bin/python bench/rejected.py --rows 10000000 --memory-limit 1.25GiB --work /tmp/bw
(the stack up; --work is bench/ingest.py's folder, whose synthetic files it reuses or makes)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from memlimit import parse_size, run_limited

CHILD = r"""
import dataclasses, json, resource, sys, time, uuid
from pathlib import Path
from santelake.config import load_settings
from santelake.ingest import runner
from santelake.ingest.errors import FileRejectedError
from santelake.ingest.load import Loader
from santelake.lake.catalog import open_catalog
from santelake.runtime.layout import Layout
from santelake.runtime.platform import platform_settings
work = Path(sys.argv[1])
settings = platform_settings(Layout(load_settings()))
catalog = open_catalog(settings)
namespace = "bench_" + uuid.uuid4().hex[:8]
schemas = {n: dataclasses.replace(d, namespace=namespace) for n, d in runner.schemas().items()}
loader = Loader(catalog, runner.pseudonymiser(settings), schemas, gx_dir=work / "gx")
try:
    loader.load("snds.beneficiaries", work / "beneficiaries.csv")
    start = time.perf_counter()
    try:
        loader.load("snds.outpatient_claims", work / "bad_claims.csv")
        raise SystemExit("the file was not rejected")
    except FileRejectedError as exc:
        message = str(exc)
    seconds = time.perf_counter() - start
    quarantined = catalog.load_table((namespace, "quarantine")).scan().count()
    published = catalog.load_table((namespace, "outpatient_claims")).scan().count()
finally:
    for identifier in catalog.list_tables(namespace):
        catalog.purge_table(identifier)
    catalog.drop_namespace(namespace)
print(json.dumps({"seconds": seconds, "quarantined": quarantined, "published": published, "message": message[:300],
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--memory-limit", type=parse_size, required=True)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    from santelake.synth import synthesize

    work = args.work / str(args.rows)
    if not (work / "outpatient_claims.csv").exists():
        work.mkdir(parents=True, exist_ok=True)
        synthesize(work, scale=max(args.rows // 10, 1), seed=5)  # as bench/ingest.py
    bad = work / "bad_claims.csv"
    if not bad.exists():
        with (work / "outpatient_claims.csv").open("rb") as source, bad.open("wb") as target:
            header = source.readline()
            column = header.rstrip(b"\r\n").split(b";").index(b"EXE_SOI_DTD")
            target.write(header)
            for line in source:
                fields = line.split(b";")
                fields[column] = fields[column][:5] + b"02-31"
                target.write(b";".join(fields))
    result, kills = run_limited([sys.executable, "-c", CHILD, str(work)], args.memory_limit)
    if kills:
        raise SystemExit(f"killed at the memory limit of {args.memory_limit / (1 << 30):.2f} GiB")
    if result.returncode != 0:
        raise SystemExit(f"the load failed otherwise:\n{result.stderr[-3000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"rows {args.rows:,}  rejected in {figures['seconds']:.1f} s  quarantined {figures['quarantined']:,}  "
          f"published {figures['published']:,}  peak RSS {figures['peak_rss_mib']:.0f} MiB")
    print(f"message: {figures['message']}")


if __name__ == "__main__":
    main()
