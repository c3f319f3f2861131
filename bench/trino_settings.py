"""One Trino session setting against the default, on the researcher suite, in one warm Trino.

Two connections of dana (no filter, no mask): one with the default session, one with the
properties given as JSON. Each of bench/queries.py's fixed queries (those without a person
parameter) runs on both in turn, the order alternating between rounds so a busy moment of the
host weighs on both; it prints each query's medians and the geometric mean of their ratios.

The lake must be loaded (bench/queries.py) and the stack up. dana may set catalog session
properties; system ones (``execution_policy``) are a platform admin's, so for those the bench
stack's rules must let data engineers set them for the run (docs/benchmarks.md).

usage: .venv/bin/python bench/trino_settings.py '{"execution_policy": "all-at-once"}' [--warmup 20] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics

from queries import SUITE, geometric_mean, timed, trino_runner

from santelake.config import load_settings
from santelake.runtime.layout import Layout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("properties", type=json.loads, help="session properties, as a JSON object")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds of the suite on both")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    layout = Layout(load_settings())
    runners = (trino_runner(layout, "dana"), trino_runner(layout, "dana", args.properties))
    suite = [q for q in SUITE if "{" not in q.sql]
    for _ in range(args.warmup):
        for q in suite:
            for run in runners:
                run(q.sql)
    times: dict[str, tuple[list[float], list[float]]] = {q.name: ([], []) for q in suite}
    for round_ in range(args.runs):
        for q in suite:
            for which in ((0, 1) if round_ % 2 else (1, 0)):
                times[q.name][which].append(timed(runners[which], q.sql, 1)[0])
    ratios = []
    for q in suite:
        before, after = (statistics.median(t) for t in times[q.name])
        ratios.append(after / before)
        print(f"{q.name:28s} default {before:6.3f} s  changed {after:6.3f} s  {after / before:5.2f}x")
    print(f"geometric mean changed/default: {geometric_mean(ratios):.3f}  {json.dumps(args.properties)}")


if __name__ == "__main__":
    main()
