"""Local service processes: start detached, record the pid, wait for health, stop cleanly."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from santelake.errors import ServiceError

HealthCheck = Callable[[], tuple[bool, str]]


@dataclass
class ProcessSpec:
    """How to run one long-lived process of a service."""

    name: str
    command: Sequence[str]
    log_file: Path
    pid_file: Path
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    user: str | None = None
    # PostgreSQL wants SIGINT for a fast shutdown; SIGTERM would wait for every client.
    stop_signal: int = signal.SIGTERM
    # A log the program writes itself, shown with its output when it fails.
    extra_log: Path | None = None


def logs_of(spec: ProcessSpec) -> str:
    text = f"last lines of {spec.log_file}:\n{tail(spec.log_file)}"
    if spec.extra_log is not None:
        text += f"\nlast lines of {spec.extra_log}:\n{tail(spec.extra_log)}"
    return text


def read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def tail(path: Path, lines: int = 30) -> str:
    try:
        content = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(content[-lines:])


def healthy_marker(pid_file: Path) -> Path:
    """Written once ``santelake up`` has seen the process's service healthy (``mark_healthy``);
    removed when the process is started. Its supervisor, if any, restarts it only after that."""
    return pid_file.with_name(pid_file.name + ".healthy")


def mark_healthy(specs: Sequence[ProcessSpec]) -> None:
    for spec in specs:
        healthy_marker(spec.pid_file).touch()


def start(spec: ProcessSpec) -> int:
    """Start ``spec`` in its own session unless it already runs; return its pid."""
    running = read_pid(spec.pid_file)
    if running is not None:
        return running
    healthy_marker(spec.pid_file).unlink(missing_ok=True)
    spec.log_file.parent.mkdir(parents=True, exist_ok=True)
    spec.pid_file.parent.mkdir(parents=True, exist_ok=True)
    log = spec.log_file.open("ab")
    log.write(f"\n==== santelake: starting {spec.name} at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
    log.flush()
    try:
        process = subprocess.Popen(
            list(spec.command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(spec.env),
            cwd=spec.cwd,
            start_new_session=True,
            user=spec.user,
        )
    except OSError as exc:
        raise ServiceError(f"{spec.name}: could not run {spec.command[0]}: {exc}") from exc
    finally:
        log.close()
    spec.pid_file.write_text(f"{process.pid}\n")
    return process.pid


def wait_healthy(specs: Sequence[ProcessSpec], check: HealthCheck, timeout: float) -> None:
    """Poll ``check`` until it passes; fail naming the process, the reason and its log."""
    deadline = time.monotonic() + timeout
    detail = "no check ran"
    while time.monotonic() < deadline:
        ok, detail = check()
        if ok:
            return
        for spec in specs:
            if read_pid(spec.pid_file) is None:
                raise ServiceError(f"{spec.name} exited while starting ({detail}); {logs_of(spec)}")
        time.sleep(1.0)
    logs = "\n".join(logs_of(spec) for spec in specs)
    names = ", ".join(spec.name for spec in specs)
    raise ServiceError(f"{names} not healthy after {timeout:.0f}s ({detail});\n{logs}")


def stop(spec: ProcessSpec, timeout: float = 60.0) -> bool:
    """Stop the process group of ``spec``: SIGTERM, then SIGKILL after ``timeout``."""
    pid = read_pid(spec.pid_file)
    if pid is None:
        spec.pid_file.unlink(missing_ok=True)
        healthy_marker(spec.pid_file).unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, spec.stop_signal)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.3)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        time.sleep(0.5)
    spec.pid_file.unlink(missing_ok=True)
    healthy_marker(spec.pid_file).unlink(missing_ok=True)
    return True


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def tcp_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def run_checked(cmd: Sequence[str], what: str, *, env: Mapping[str, str] | None = None,
                user: str | None = None, cwd: Path | None = None, timeout: float = 600) -> str:
    """Run a one-shot command; on failure raise naming ``what`` with its output."""
    result = subprocess.run(
        list(cmd), capture_output=True, text=True, env=None if env is None else dict(env),
        user=user, cwd=cwd, timeout=timeout, check=False,
    )
    if result.returncode != 0:
        raise ServiceError(f"{what} failed (exit {result.returncode}): {' '.join(cmd)}\n"
                           f"{result.stdout[-2000:]}{result.stderr[-3000:]}")
    return result.stdout
