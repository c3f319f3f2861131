"""Run a benchmark child under a hard memory limit: a kernel cgroup, so going over is fatal.

Peak RSS says how much a run happened to use; a limit the kernel enforces says the run
fits in that much. The child goes into a fresh memory cgroup (v2 ``memory.max`` or v1
``memory.limit_in_bytes``, whichever this machine has, as root), with swap off for it;
past the limit the kernel reclaims page cache and then kills the child, which the caller
sees as a failed run and an ``oom_kill`` count above zero.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

V2_ROOT = Path("/sys/fs/cgroup")
V1_ROOT = Path("/sys/fs/cgroup/memory")
_UNITS = {"": 1, "K": 1 << 10, "KI": 1 << 10, "M": 1 << 20, "MI": 1 << 20, "G": 1 << 30, "GI": 1 << 30}


def parse_size(text: str) -> int:
    """``1.5GiB``, ``1200M``, ``1073741824`` to bytes."""
    found = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMG]i?)?B?\s*", text, re.IGNORECASE)
    if not found:
        raise ValueError(f"not a memory size: {text!r} (write it like 1.5GiB or 1200MiB)")
    return int(float(found[1]) * _UNITS[(found[2] or "").upper()])


@dataclass
class Limited:
    group: Path
    version: int
    limit: int

    def add(self, pid: int) -> None:
        (self.group / "cgroup.procs").write_text(f"{pid}\n")

    def oom_kills(self) -> int:
        events = self.group / ("memory.events" if self.version == 2 else "memory.oom_control")
        found = re.search(r"oom_kill (\d+)", events.read_text())
        return int(found[1]) if found else 0


@contextmanager
def memory_cgroup(limit: int) -> Iterator[Limited]:
    """A fresh memory cgroup limited to ``limit`` bytes, removed afterwards."""
    name = f"santelake-bench-{uuid.uuid4().hex[:8]}"
    if "memory" in (V2_ROOT / "cgroup.subtree_control").read_text(errors="replace").split() \
            if (V2_ROOT / "cgroup.subtree_control").exists() else False:
        group, version = V2_ROOT / name, 2
        group.mkdir()
        (group / "memory.max").write_text(str(limit))
        if (group / "memory.swap.max").exists():
            (group / "memory.swap.max").write_text("0")
    elif (V1_ROOT / "cgroup.procs").exists():
        group, version = V1_ROOT / name, 1
        group.mkdir()
        (group / "memory.limit_in_bytes").write_text(str(limit))
        (group / "memory.swappiness").write_text("0")
    else:
        raise SystemExit("--memory-limit needs a memory cgroup (v2 with the memory controller enabled at "
                         f"{V2_ROOT}, or v1 at {V1_ROOT}) and root; this machine has neither")
    try:
        yield Limited(group, version, limit)
    finally:
        # A process still in it keeps it: the kernel removes nothing in use.
        with contextlib.suppress(OSError):
            group.rmdir()


def run_limited(command: list[str], limit: int) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run ``command`` inside a memory cgroup of ``limit`` bytes; returns it and the OOM kills seen."""
    with memory_cgroup(limit) as cgroup:
        result = subprocess.run(command, capture_output=True, text=True, check=False,
                                preexec_fn=lambda: cgroup.add(os.getpid()))
        return result, cgroup.oom_kills()
