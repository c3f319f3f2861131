"""Many researchers at once: latency, errors and Trino's memory under a mixed query suite.

--users researchers (20 by default) query the local stack's Trino at the same time for
--seconds (300), each through a login of their own (a token of their own, renewed before it
expires) and under their project's policies: the dev researcher alice (project cardio_outcomes:
a row filter on the department of residence, masked ids and birth months). Each runs the suite
below in turn, starting at a different query, waiting --think seconds (5, or 0 for back to back)
between queries. Loopback only; the run is bounded by --seconds.

--with-load runs ingestion at the same time: a child process loads a synthetic file of
--load-rows outpatient claims into a namespace of its own, again and again until the run ends
(each load dropped after), the loader's full path (pseudonymisation, rules, audit, commit).

Printed: queries run, errors (each kind with its count and one message), p50/p95/max latency,
queries per second, and Trino's peak resident memory (its JVM, sampled every 0.5 s).

--warmup S first runs 5 sessions back to back for S seconds, untimed. Trino's JIT compiles its
planning and scheduling code only after thousands of queries: measured on the demo tables, a
Trino started a few minutes before spent 430 ms of CPU on alice's count by sex, the same
Trino 130-160 ms once it had served a few hundred queries (docs/benchmarks.md). The
run prints how long Trino has been up, so a figure says which of the two it measured.

usage: .venv/bin/python bench/load.py [--users 20] [--seconds 300] [--think 5] [--with-load] [--warmup 300]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from santelake.runtime.layout import Layout

SUITE = {
    "by_sex": "SELECT sex_code, count(*) FROM iceberg.snds.beneficiaries GROUP BY sex_code",
    "by_department": "SELECT residence_department, count(*) FROM iceberg.snds.beneficiaries GROUP BY 1 ORDER BY 1",
    "stays_by_year": "SELECT year(admission_date), count(*) FROM iceberg.snds.hospital_stays GROUP BY 1 ORDER BY 1",
    "top_diagnoses": ("SELECT main_diagnosis, count(*) AS n FROM iceberg.snds.hospital_stays "
                      "GROUP BY 1 ORDER BY n DESC LIMIT 20"),
    "stays_by_sex": ("SELECT b.sex_code, count(*) FROM iceberg.snds.hospital_stays s "
                     "JOIN iceberg.snds.beneficiaries b ON s.person_id = b.person_id GROUP BY 1"),
    "persons_with_stays": "SELECT count(DISTINCT person_id) FROM iceberg.snds.hospital_stays",
    "length_of_stay": ("SELECT avg(date_diff('day', admission_date, discharge_date)) "
                       "FROM iceberg.snds.hospital_stays WHERE discharge_date IS NOT NULL"),
}
TOKEN_RENEWAL = 240.0  # seconds; Keycloak's access tokens live 300


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    per_query: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    example: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, name: str, seconds: float) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.per_query[name].append(seconds)

    def failed(self, name: str, exc: BaseException) -> None:
        kind = f"{name}: {type(exc).__name__}"
        with self.lock:
            self.errors[kind] += 1
            self.example.setdefault(kind, str(exc).splitlines()[0][:300] if str(exc) else "")


def trino_uptime(pid: int) -> float:
    """Seconds since the Trino process started (its start time in clock ticks since boot)."""
    started = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
    return float(Path("/proc/uptime").read_text().split()[0]) - started


def sessions(layout: Layout, user: str, users: int, seconds: float, think: float, tally: Tally) -> None:
    """``users`` researchers querying for ``seconds``; returns when all are done."""
    start = threading.Barrier(users + 1)
    until = time.monotonic() + seconds + 1
    threads = [threading.Thread(target=researcher, args=(layout, user, i, until, think, tally, start), daemon=True)
               for i in range(users)]
    for thread in threads:
        thread.start()
    start.wait()
    for thread in threads:
        thread.join()


def researcher(layout: Layout, user: str, index: int, until: float, think: float, tally: Tally,
               start: threading.Barrier) -> None:
    from santelake.access import query
    from santelake.access.token import dev_token

    names = list(SUITE)
    start.wait()
    token, issued, n = None, 0.0, index
    while time.monotonic() < until:
        name = names[n % len(names)]
        n += 1
        began = time.monotonic()
        try:
            if token is None or began - issued > TOKEN_RENEWAL:
                token, issued = dev_token(layout, user), time.monotonic()
                began = time.monotonic()
            query.run(layout, token, SUITE[name])
            tally.ok(name, time.monotonic() - began)
        except Exception as exc:  # every failure is counted and shown, none stops the run
            tally.failed(name, exc)
        if think:
            time.sleep(min(think, max(0.0, until - time.monotonic())))


def trino_rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


LOADER = r"""
import dataclasses, sys, time, uuid
from pathlib import Path
from santelake.config import load_settings
from santelake.ingest import runner
from santelake.ingest.load import Loader
from santelake.lake.catalog import open_catalog
from santelake.runtime.layout import Layout
from santelake.runtime.platform import platform_settings
work, until = Path(sys.argv[1]), float(sys.argv[2])
settings = platform_settings(Layout(load_settings()))
catalog = open_catalog(settings)
loads = 0
while time.time() < until:
    namespace = "bench_load_" + uuid.uuid4().hex[:8]
    schemas = {n: dataclasses.replace(d, namespace=namespace) for n, d in runner.schemas().items()}
    loader = Loader(catalog, runner.pseudonymiser(settings), schemas, gx_dir=work / "gx")
    loader.load("snds.beneficiaries", work / "beneficiaries.csv")
    result = loader.load("snds.outpatient_claims", work / "outpatient_claims.csv")
    assert result.rows_published == result.rows_read, result
    for identifier in catalog.list_tables(namespace):
        catalog.purge_table(identifier)
    catalog.drop_namespace(namespace)
    loads += 1
    print(f"load {loads}: {result.rows_published:,} claims", file=sys.stderr, flush=True)
print(loads)
"""


def start_loads(work: Path, rows: int, until_epoch: float) -> subprocess.Popen[str]:
    # About ten claims a person (santelake synth): the scale that gives ``rows`` claims.
    subprocess.run([str(Path(sys.executable).parent / "santelake"), "synth", "--out", str(work), "--scale",
                    str(max(1000, rows // 10)), "--seed", "7"], check=True, capture_output=True)
    return subprocess.Popen([sys.executable, "-c", LOADER, str(work), str(until_epoch)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--think", type=float, default=5.0, help="seconds between a researcher's queries")
    parser.add_argument("--user", default="alice", help="the dev researcher every session logs in as")
    parser.add_argument("--with-load", action="store_true", help="ingestion loads running meanwhile")
    parser.add_argument("--load-rows", type=int, default=1_000_000)
    parser.add_argument("--warmup", type=float, default=0.0,
                        help="seconds of 5 untimed back-to-back sessions first, so Trino's JIT has compiled")
    args = parser.parse_args()

    from santelake.config import load_settings
    from santelake.runtime import process
    from santelake.runtime.services.trino import Trino

    layout = Layout(load_settings())
    pid = process.read_pid(Trino(layout).processes()[0].pid_file)
    if not pid:
        raise SystemExit("Trino is not running: `santelake up` first")
    if args.warmup:
        warm = Tally()
        sessions(layout, args.user, 5, args.warmup, 0.0, warm)
        print(f"warm-up: {len(warm.latencies)} queries in {args.warmup:.0f} s, "
              f"{sum(warm.errors.values())} errors", flush=True)
    uptime = trino_uptime(pid)
    tally, peak = Tally(), [trino_rss(pid)]
    work = Path(tempfile.mkdtemp(prefix="santelake-load-"))
    loads = start_loads(work, args.load_rows, time.time() + args.seconds) if args.with_load else None
    if loads is not None:
        time.sleep(5)  # the loader child past its imports: the load overlaps the queries from the start
    run = threading.Thread(target=sessions, args=(layout, args.user, args.users, args.seconds, args.think, tally),
                           daemon=True)
    began = time.monotonic()
    run.start()
    while run.is_alive():
        peak.append(trino_rss(pid))
        time.sleep(0.5)
    elapsed = time.monotonic() - began
    loads_done = "-"
    if loads is not None:
        # It starts no load past the run's end, and ends the one under way: no half-made namespace left.
        _, err = loads.communicate(timeout=1800)
        if loads.returncode != 0:
            print(f"the loads failed:\n{err[-3000:]}", file=sys.stderr)
        loads_done = str(sum(1 for line in err.splitlines() if line.startswith("load ")))

    lat = tally.latencies
    meanwhile = f"{loads_done} loads of {args.load_rows:,} claims" if loads is not None else "none"
    print(f"{args.users} researchers ({args.user}'s project policies), {elapsed:.0f} s, think {args.think:g} s, "
          f"ingestion meanwhile: {meanwhile}; Trino up {uptime / 60:.0f} min before the run")
    print(f"queries {len(lat)}, errors {sum(tally.errors.values())}, {len(lat) / elapsed:.2f} queries/s")
    if lat:
        print(f"latency p50 {percentile(lat, 0.5):.2f} s, p95 {percentile(lat, 0.95):.2f} s, max {max(lat):.2f} s")
    print(f"Trino peak RSS {max(peak) / (1 << 30):.2f} GiB")
    for name, values in sorted(tally.per_query.items()):
        print(f"  {name:20s} n={len(values):4d} p50 {statistics.median(values):.2f} s  "
              f"p95 {percentile(values, 0.95):.2f} s")
    for kind, count in tally.errors.most_common():
        print(f"  error x{count} {kind}: {tally.example[kind]}")


if __name__ == "__main__":
    main()
