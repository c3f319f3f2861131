"""Resident memory of each running service at idle, from /proc (the stack must be up).

Run: .venv/bin/python bench/idle_memory.py [--state-dir DIR]
Prints one line per service (the RSS of its whole process tree) and the total.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from santelake.config import load_settings
from santelake.runtime import stack
from santelake.runtime.layout import Layout
from santelake.runtime.listening import descendants


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir")
    args = parser.parse_args()
    layout = Layout(load_settings({"state_dir": args.state_dir}))
    total = 0
    for status in stack.status(layout):
        pids = descendants([p for p in status.pids if p])
        rss = sum(rss_kib(p) for p in pids if Path(f"/proc/{p}").exists())
        total += rss
        print(f"{status.name:10} {len(pids):3} processes  {rss / 1024:8.0f} MiB")
    print(f"{'total':10} {'':13}  {total / 1024:8.0f} MiB")


if __name__ == "__main__":
    main()
