"""Run one command and start it again when it exits on its own: the local stack's restart policy.

Airflow's scheduler and dag-processor exit when their database goes away, even for a second (a
PostgreSQL restart, or a kill the fault tests make): their loop meets a refused connection and
the process ends. On Kubernetes the kubelet starts the container again; on one machine nothing
did, so loads silently stopped until someone ran ``santelake up``. This supervisor stands in for
the kubelet: ``python -m santelake.runtime.keepalive NAME --healthy-file PATH -- COMMAND...``.

- An end before ``santelake up`` has seen the service healthy (it then writes PATH) is a start
  failure (a bad configuration, a port taken): the supervisor exits with its status, so ``up``
  reports "exited while starting" with the log, as without it.
- Any later end is written to the log (``==== santelake: NAME exited ...``) and the command is
  started again after a delay that doubles from ``FIRST_DELAY`` to ``MAX_DELAY`` while the runs
  keep failing fast (the database may be down a while), and starts over once a run lasted.
- SIGTERM or SIGINT stops it for good: ``santelake down`` signals the process group, which the
  command shares, so the command gets the signal itself; the supervisor waits for it and exits.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

FIRST_DELAY = 2.0
MAX_DELAY = 60.0
LASTED = 120.0  # a run this long resets the delay


def supervise(name: str, command: Sequence[str], healthy_file: Path | None = None, *,
              first_delay: float = FIRST_DELAY, max_delay: float = MAX_DELAY, lasted: float = LASTED,
              say: Callable[[str], None] = lambda line: print(line, flush=True)) -> int:
    """Run ``command`` until a stop signal; the exit status to end with. ``healthy_file``: present
    once the service was seen healthy; an end before that is a start failure, not started again."""
    stopping: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    delay = first_delay
    while True:
        began = time.monotonic()
        status = subprocess.Popen(list(command)).wait()
        ran = time.monotonic() - began
        if stopping:
            return _exit_code(status)
        if healthy_file is not None and not healthy_file.exists():
            say(f"==== santelake: {name} exited with status {status} after {ran:.0f} s, before it was seen "
                "healthy; not started again")
            return _exit_code(status)
        delay = first_delay if ran >= lasted else delay
        say(f"==== santelake: {name} exited with status {status} after {ran:.0f} s; starting it again in "
            f"{delay:.0f} s at {time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(time.time() + delay))}")
        deadline = time.monotonic() + delay
        while not stopping and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        if stopping:
            return 0
        delay = min(delay * 2, max_delay)


def _exit_code(status: int) -> int:
    """A child's status as a process's exit code (killed by signal N: 128 + N, as a shell says)."""
    return status if status >= 0 else 128 - status


USAGE = "usage: python -m santelake.runtime.keepalive NAME [--healthy-file PATH] -- COMMAND [ARG...]"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args:
        print(USAGE, file=sys.stderr)
        return 2
    split = args.index("--")
    options, command = args[:split], args[split + 1:]
    healthy: Path | None = None
    if len(options) == 3 and options[1] == "--healthy-file":
        healthy = Path(options[2])
    elif len(options) != 1:
        print(USAGE, file=sys.stderr)
        return 2
    if not command:
        print(USAGE, file=sys.stderr)
        return 2
    return supervise(options[0], command, healthy)


if __name__ == "__main__":
    sys.exit(main())
