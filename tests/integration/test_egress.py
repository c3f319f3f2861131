"""Zero egress, proven (issue 17, item 5): `santelake up` from an empty state folder (the artifact
caches warm), in a network namespace that has only loopback, with every connect() and every
addressed send of every process of the stack recorded by strace. It passes only if the demo
loads, the researcher's query is answered, and every connection went to loopback.

A name lookup through DNS would show as a connect() or send to port 53 of the namespace's
resolver; none may happen (docs/reliability.md, "Zero egress").
"""

from __future__ import annotations

import collections
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from santelake.runtime.layout import Layout

pytestmark = [pytest.mark.integration, pytest.mark.egress]

SANTELAKE = str(Path(sys.executable).parent / "santelake")
# connect(5, {sa_family=AF_INET, sin_port=htons(5432), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
# sendto(7, "...", 40, 0, {sa_family=AF_INET6, sin6_port=htons(53), ..., sin6_addr=inet_pton(AF_INET6, "::1"), ...
ADDRESS = re.compile(r'sa_family=(?P<family>AF_INET6?), sin6?_port=htons\((?P<port>\d+)\).*?'
                     r'(?:inet_addr\("(?P<v4>[^"]+)"\)|inet_pton\(AF_INET6?, "(?P<v6>[^"]+)")')
SYSCALL = re.compile(r"^(?P<pid>\d+)\s+(?P<call>connect|sendto|sendmsg)\(")


def destinations(log: Path) -> collections.Counter[tuple[str, int, str]]:
    """(address, port, syscall) of every IP destination in strace's log; Unix and netlink sockets are local."""
    found: collections.Counter[tuple[str, int, str]] = collections.Counter()
    for line in log.read_text(errors="replace").splitlines():
        call = SYSCALL.match(line)
        address = ADDRESS.search(line) if call else None
        if call and address:
            found[(address["v4"] or address["v6"], int(address["port"]), call["call"])] += 1
    return found


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified  # connect() to 0.0.0.0 or :: reaches this host


def test_destinations_are_read_from_stracess_lines(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text('101 connect(5, {sa_family=AF_INET, sin_port=htons(5432), sin_addr=inet_addr("127.0.0.1")},'
                   ' 16) = 0\n'
                   '102 sendto(7, "x", 1, 0, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.0.0.2")},'
                   ' 16) = -1 ENETUNREACH\n'
                   '103 connect(9, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), '
                   'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0\n'
                   '104 connect(3, {sa_family=AF_UNIX, sun_path="/run/x"}, 110) = 0\n')
    assert destinations(log) == {("127.0.0.1", 5432, "connect"): 1, ("10.0.0.2", 53, "sendto"): 1,
                                 ("::1", 443, "connect"): 1}
    assert [is_loopback(a) for a in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "10.0.0.2", "0.0.0.0")] == \
        [True, True, True, False, True]


def test_santelake_up_with_only_loopback_loads_the_demo_answers_and_connects_nowhere_else(layout: Layout) -> None:
    state = layout.settings.state_dir.with_name(".santelake-egress")
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(mode=0o711)
    log, out, rc = state.with_name(".santelake-egress.strace"), state / "up.out", state / "up.rc"
    script = (f"ip link set lo up && exec strace -f --seccomp-bpf -qq -e trace=connect,sendto,sendmsg "
              f"-e signal=none -o {log} sh -c '{SANTELAKE} --state-dir {state} up > {out} 2>&1; echo $? > {rc}'")
    tracer = subprocess.Popen(["unshare", "--net", "sh", "-c", script], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 1800
        while not rc.exists() and tracer.poll() is None and time.monotonic() < deadline:
            time.sleep(2)
        assert rc.exists(), f"santelake up did not end: {tracer.stderr.read() if tracer.poll() is not None else ''}"
        time.sleep(1)
        output = out.read_text()
        assert rc.read_text().strip() == "0", output[-4000:]
    finally:
        subprocess.run([SANTELAKE, "--state-dir", str(state), "down"], capture_output=True, timeout=300, check=False)
        try:
            tracer.wait(timeout=120)  # strace ends with the last process it traces
        except subprocess.TimeoutExpired:
            tracer.kill()
    assert "Researcher 'alice' asks" in output and "Diseases of the circulatory system" in output, output[-3000:]
    assert "demo extracts landed" in output, output[-3000:]  # a fresh state: loaded now, not found loaded
    # A fresh start prints its own lines only: no library's warning (issue: a pyiceberg UserWarning showed).
    warnings = [line for line in output.splitlines() if "Warning" in line or "warnings.warn" in line]
    assert not warnings, warnings
    found = destinations(log)
    elsewhere = {d: n for d, n in found.items() if not is_loopback(d[0])}
    dns = {d: n for d, n in found.items() if d[1] == 53}
    summary = collections.Counter(port for (_, port, _), n in found.items() for _ in range(n))
    print(f"\n[egress] {sum(found.values())} IP connections and sends, all by port: {dict(summary.most_common())}")
    assert not dns, f"name lookups through DNS: {dns}"
    assert not elsewhere, f"connections that left loopback: {elsewhere}"
    shutil.rmtree(state, ignore_errors=True)
    log.unlink(missing_ok=True)
    os.sync()
