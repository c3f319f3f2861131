"""Synthetic extract generation: rows per second and peak resident memory per scale.

Each scale runs in a fresh child process (so the peak is its own) into a temporary folder,
removed afterwards.

usage: .venv/bin/python bench/synth.py [--scale 100000 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys
from pathlib import Path
from santelake.synth import synthesize
report = synthesize(Path(sys.argv[2]), scale=int(sys.argv[1]), seed=42)
print(json.dumps({"rows": report.rows, "seconds": report.seconds,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    print(f"{'persons':>11} {'rows':>13} {'seconds':>8} {'rows/s':>11} {'peak RSS MiB':>13}")
    for scale in args.scale:
        with tempfile.TemporaryDirectory(prefix="santelake-synth-") as out:
            result = subprocess.run([sys.executable, "-c", CHILD, str(scale), out], capture_output=True, text=True,
                                    check=False)
        if result.returncode != 0:
            raise SystemExit(result.stderr[-3000:])
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{scale:>11,} {figures['rows']:>13,} {figures['seconds']:>8.1f} "
              f"{figures['rows'] / figures['seconds']:>11,.0f} {figures['peak_rss_mib']:>13.0f}", flush=True)


if __name__ == "__main__":
    main()
