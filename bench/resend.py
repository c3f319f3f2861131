"""A reference extract re-sent: time and peak memory of the load whose every row repeats.

For each size N it cuts the first N persons of a synthetic beneficiaries extract (santelake
synth's persons, written once into --work as beneficiaries-<largest N>.csv) and loads them
into a fresh namespace. Then it loads the same rows again as they would be re-sent: with CRLF
line endings (other bytes, so not "already loaded"), every row unchanged; and, with
--changed F, a share F of them with a death date added (updates). Each size runs in a child
process; peak RSS is sampled during each load (resident memory, every 20 ms). The stack must
be up (santelake up --only postgres minio).

--claims DIR does the same for an event table: DIR holds santelake synth's beneficiaries.csv
and outpatient_claims.csv (as `bench/ingest.py --work DIR` leaves them); it loads the persons,
the claims, then the claims again with CRLF line endings, every row refused into quarantine.

usage: .venv/bin/python bench/resend.py [--persons 250000 1000000] [--changed 0.01] [--work DIR]
       .venv/bin/python bench/resend.py --claims DIR
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import dataclasses, json, sys, threading, time, uuid
from pathlib import Path
from santelake.config import load_settings
from santelake.ingest import runner
from santelake.ingest.load import Loader
from santelake.lake.catalog import open_catalog
from santelake.runtime.layout import Layout
from santelake.runtime.platform import platform_settings

settings = platform_settings(Layout(load_settings()))
catalog = open_catalog(settings)
namespace = "bench_" + uuid.uuid4().hex[:8]
schemas = {n: dataclasses.replace(d, namespace=namespace) for n, d in runner.schemas().items()}
loader = Loader(catalog, runner.pseudonymiser(settings), schemas, gx_dir=None)
peak = [0]
def sample():
    while True:
        peak[0] = max(peak[0], int(open("/proc/self/statm").read().split()[1]) * 4096)
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
try:
    for table, label, path in json.loads(sys.argv[1]):
        peak[0] = 0
        start = time.perf_counter()
        result = loader.load(table, Path(path))
        print(json.dumps({"load": label, "seconds": time.perf_counter() - start, "peak_rss_mib": peak[0] / 2**20,
                          "read": result.rows_read, "published": result.rows_published,
                          "updated": result.rows_updated, "unchanged": result.rows_unchanged,
                          "refused": result.rows_refused}), flush=True)
finally:
    for identifier in catalog.list_tables(namespace):
        catalog.purge_table(identifier)
    catalog.drop_namespace(namespace)
"""


def write_beneficiaries(path: Path, persons: int, seed: int = 5) -> None:
    """A synthetic beneficiaries extract of ``persons`` persons, as santelake synth writes it (the
    same generator and file format), without the care tables synth would write beside it."""
    import numpy as np

    from santelake.synth.persons import PERSONS_PER_BLOCK, beneficiaries, draw_persons
    from santelake.synth.sinks import open_sink
    from santelake.synth.sources import BENEFICIARIES

    path.parent.mkdir(parents=True, exist_ok=True)
    sink = open_sink(BENEFICIARIES, path)
    try:
        for block in range(-(-persons // PERSONS_PER_BLOCK)):
            count = min(PERSONS_PER_BLOCK, persons - block * PERSONS_PER_BLOCK)
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 1, block])))
            sink.write(beneficiaries(draw_persons(rng, block, count)))
    except BaseException:
        sink.abort()
        raise
    sink.commit()


def cut(source: Path, out: Path, persons: int, changed: float, crlf: bool) -> None:
    """The header and the first ``persons`` rows of ``source`` (its bytes kept: read as Latin-1).

    A share ``changed`` of the rows get a death date (BEN_DCD_DTE); CRLF line endings if ``crlf``.
    """
    every = round(1 / changed) if changed else 0
    end = "\r\n" if crlf else "\n"
    with source.open(encoding="latin-1") as rows, out.open("w", encoding="latin-1", newline="") as written:
        header = next(rows).rstrip("\r\n")
        death = header.split(";").index("BEN_DCD_DTE")
        written.write(header + end)
        for number, line in enumerate(rows):
            if number == persons:
                break
            fields = line.rstrip("\r\n").split(";")
            if every and number % every == 0 and not fields[death]:
                fields[death] = "15012026"
            written.write(";".join(fields) + end)


def crlf_copy(source: Path, out: Path) -> None:
    """``source`` with CRLF line endings: the same rows, other bytes."""
    with source.open("rb") as rows, out.open("wb") as written:
        for line in rows:
            written.write(line.rstrip(b"\r\n") + b"\r\n")


def table_header(size: str) -> str:
    return (f"{size:>10} {'load':24} {'seconds':>8} {'peak RSS MiB':>13} {'published':>10} {'updated':>8} "
            f"{'unchanged':>10} {'refused':>10}")


def run(plan: list[tuple[str, str, str]], size: str) -> None:
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(plan)], check=True, stdout=subprocess.PIPE,
                           text=True)
    for line in child.stdout.splitlines():
        figures = json.loads(line)
        print(f"{size:>10} {figures['load']:24} {figures['seconds']:>8.1f} {figures['peak_rss_mib']:>13.0f} "
              f"{figures['published']:>10,} {figures['updated']:>8,} {figures['unchanged']:>10,} "
              f"{figures['refused']:>10,}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--changed", type=float, default=0.0,
                        help="also re-send with this share of the persons given a death month (updates)")
    parser.add_argument("--work", type=Path, default=None,
                        help="a folder holding (or to hold) the synthetic extract; kept")
    parser.add_argument("--claims", type=Path, default=None,
                        help="a folder holding synth's beneficiaries.csv and outpatient_claims.csv: re-send the claims")
    args = parser.parse_args()
    if args.claims is not None:
        claims = args.claims / "outpatient_claims.csv"
        with tempfile.TemporaryDirectory(prefix="santelake-resend-") as scratch:
            again = Path(scratch) / "outpatient_claims-again.csv"
            crlf_copy(claims, again)
            print(table_header("rows"))
            run([("snds.beneficiaries", "persons", str(args.claims / "beneficiaries.csv")),
                 ("snds.outpatient_claims", "first", str(claims)),
                 ("snds.outpatient_claims", "re-sent, CRLF", str(again))], "claims")
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="santelake-bench-"))
    source = work / f"beneficiaries-{max(args.persons)}.csv"
    if not source.exists():
        write_beneficiaries(source, max(args.persons))
    print(table_header("persons"))
    with tempfile.TemporaryDirectory(prefix="santelake-resend-") as scratch:
        for persons in args.persons:
            loads = [("first", False, 0.0), ("re-sent, CRLF", True, 0.0)]
            if args.changed:
                loads.append((f"re-sent, {args.changed:.0%} changed", False, args.changed))
            plan = []
            for index, (label, crlf, changed) in enumerate(loads):
                path = Path(scratch) / f"{persons}-{index}.csv"
                cut(source, path, persons, changed, crlf)
                plan.append(("snds.beneficiaries", label, str(path)))
            run(plan, f"{persons:,}")


if __name__ == "__main__":
    main()
