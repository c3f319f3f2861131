"""The local stack's restart policy (runtime/keepalive.py), on real child processes: an end before
the service was seen healthy is a start failure, not retried; a later end is started again; a stop
signal to the group ends both for good."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

SUPERVISE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from santelake.runtime.keepalive import supervise
    sys.exit(supervise("worker", sys.argv[2:], Path(sys.argv[1]), first_delay=0.1, max_delay=0.4, lasted=60))
""")


def _start(healthy: Path, *command: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", SUPERVISE, str(healthy), *command], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_an_end_before_the_service_was_seen_healthy_is_a_start_failure_not_retried(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    supervisor = _start(tmp_path / "healthy", sys.executable, "-c",
                        f"open({str(runs)!r}, 'a').write('run\\n'); raise SystemExit(7)")
    out, _ = supervisor.communicate(timeout=30)
    assert supervisor.returncode == 7, out
    assert runs.read_text() == "run\n"
    assert "worker exited with status 7" in out and "before it was seen healthy; not started again" in out, out


def test_a_later_exit_is_started_again_until_the_group_is_stopped(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    script = f"import time; open({str(runs)!r}, 'a').write('run\\n'); time.sleep(0.3); raise SystemExit(3)"
    healthy = tmp_path / "healthy"
    healthy.touch()
    supervisor = _start(healthy, sys.executable, "-c", script)
    try:
        _wait_for(lambda: runs.exists() and runs.read_text().count("run") >= 3)
    finally:
        os.killpg(supervisor.pid, signal.SIGTERM)
    out, _ = supervisor.communicate(timeout=30)
    count = runs.read_text().count("run")
    time.sleep(1.5)
    assert runs.read_text().count("run") == count, "started again after the stop signal"
    assert out.count("worker exited with status 3") >= 2 and "starting it again in" in out, out
    assert "before it was seen healthy" not in out, out


def test_a_stop_signal_to_the_group_ends_the_command_and_its_supervisor(tmp_path: Path) -> None:
    started = tmp_path / "started"
    healthy = tmp_path / "healthy"
    healthy.touch()
    supervisor = _start(healthy, sys.executable, "-c",
                        f"import time; open({str(started)!r}, 'w').close(); time.sleep(60)")
    _wait_for(started.exists)
    began = time.monotonic()
    os.killpg(supervisor.pid, signal.SIGTERM)
    out, _ = supervisor.communicate(timeout=30)
    assert time.monotonic() - began < 10
    assert supervisor.returncode == 128 + signal.SIGTERM, out  # the command's own end, passed on
    assert "exited" not in out, out


def test_the_command_line_as_the_stack_writes_it(tmp_path: Path) -> None:
    """``Service.spec(restart=True)``'s form: NAME --healthy-file PATH -- COMMAND; anything else is refused."""
    keepalive = [sys.executable, "-m", "santelake.runtime.keepalive"]
    child = [sys.executable, "-c", "import sys; print(sys.argv[1:]); sys.exit(4)", "--healthy-file", "x"]
    ran = subprocess.run([*keepalive, "worker", "--healthy-file", str(tmp_path / "healthy"), "--", *child],
                         capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 4, ran.stderr
    assert "['--healthy-file', 'x']" in ran.stdout, ran.stdout  # the command's own arguments, untouched
    assert "worker exited with status 4" in ran.stdout, ran.stdout
    for wrong in (["worker"], ["worker", "--"], ["worker", "--healthy", "p", "--", "true"]):
        refused = subprocess.run([*keepalive, *wrong], capture_output=True, text=True, timeout=60, check=False)
        assert refused.returncode == 2 and refused.stderr.startswith("usage:"), (wrong, refused.stderr)
