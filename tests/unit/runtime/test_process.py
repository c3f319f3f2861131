import socket
import sys
from pathlib import Path

import pytest

from santelake.errors import ServiceError
from santelake.runtime import process


def _spec(tmp_path: Path, code: str) -> process.ProcessSpec:
    return process.ProcessSpec(
        name="sleeper", command=[sys.executable, "-c", code], log_file=tmp_path / "sleeper.log",
        pid_file=tmp_path / "sleeper.pid", env={},
    )


def test_start_is_idempotent_and_stop_ends_the_process(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "import time; print('hello', flush=True); time.sleep(60)")
    pid = process.start(spec)
    assert process.start(spec) == pid
    assert process.pid_alive(pid)
    assert process.stop(spec, timeout=10)
    assert not process.pid_alive(pid)
    assert not spec.pid_file.exists()
    assert process.stop(spec) is False


def test_a_process_that_dies_is_reported_with_its_log(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "import sys; print('bad config: foo', flush=True); sys.exit(3)")
    process.start(spec)
    with pytest.raises(ServiceError, match=r"(?s)sleeper exited while starting.*bad config: foo"):
        process.wait_healthy([spec], lambda: (False, "refused"), timeout=20)


def test_a_service_never_healthy_times_out_naming_it(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "import time; time.sleep(60)")
    process.start(spec)
    try:
        with pytest.raises(ServiceError, match=r"sleeper not healthy after 2s \(still warming\)"):
            process.wait_healthy([spec], lambda: (False, "still warming"), timeout=2)
    finally:
        process.stop(spec)


def test_port_in_use_is_detected() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not process.port_free("127.0.0.1", port)
    assert process.port_free("127.0.0.1", port)


def test_failed_command_names_what_failed() -> None:
    with pytest.raises(ServiceError, match=r"(?s)creating the widget failed \(exit 2\).*nope"):
        process.run_checked([sys.executable, "-c", "import sys; sys.stderr.write('nope'); sys.exit(2)"],
                            "creating the widget")
