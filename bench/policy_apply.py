"""Seconds from `policy apply` to the change being in force on the running Trino.

Reopens the ended project of dev user bob (a copy of policies/ with a later end date),
applies it, times until bob can read a table it grants, applies the real policies again and
times until bob is refused; repeated --rounds times. The stack must be up.

usage: .venv/bin/python bench/policy_apply.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trino.exceptions

from santelake.access import query
from santelake.access.enforce import apply
from santelake.access.token import dev_token
from santelake.config import load_settings
from santelake.locations import policies_dir
from santelake.policy.build import build
from santelake.runtime.layout import Layout
from santelake.runtime.platform import platform_settings

PROBE = "SELECT count(*) FROM iceberg.snds.pharmacy_dispensations"
PROJECT = Path("projects") / "antidiabetics_2023.yaml"


def seconds_until(check: Callable[[], bool], timeout: float = 60.0) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"no effect after {timeout:.0f}s")
        time.sleep(0.1)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    layout = Layout(load_settings())
    settings = platform_settings(layout)
    real = build().compiled
    with tempfile.TemporaryDirectory() as scratch:
        reopened_dir = Path(scratch) / "policies"
        shutil.copytree(policies_dir(), reopened_dir)
        project = reopened_dir / PROJECT
        project.write_text(project.read_text().replace("end: 2024-06-30", "end: 2099-12-31"))
        reopened = build(reopened_dir).compiled

    def bob_can_read() -> bool:
        try:
            query.run(layout, dev_token(layout, "bob"), PROBE)
        except trino.exceptions.TrinoUserError:
            return False
        return True

    granted, withdrawn = [], []
    try:
        for _ in range(args.rounds):
            apply(settings, reopened, keycloak=False)
            granted.append(seconds_until(bob_can_read))
            apply(settings, real, keycloak=False)
            withdrawn.append(seconds_until(lambda: not bob_can_read()))
    finally:
        apply(settings, real, keycloak=False)
    for name, values in (("granted", granted), ("withdrawn", withdrawn)):
        print(f"{name:10} median {statistics.median(values):4.1f} s  max {max(values):4.1f} s  "
              f"({', '.join(f'{v:.1f}' for v in values)})")


if __name__ == "__main__":
    main()
