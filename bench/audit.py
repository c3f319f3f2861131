"""The audit trail's cost: the receiver's sustained events per second, and researcher query latency
with Trino's audit listener on and off.

receiver  The product's receiver (`santelake audit serve`, its own process) on a free loopback
          port, writing to a scratch trail database (santelake_audit_bench, dropped after),
          takes distinct completed-query events shaped like Trino's from --senders processes
          (one keep-alive HTTPS session each) for --seconds. Prints events/s, the answer's
          p50/p99 and proves the chain.
latency   The researcher query suite (alice's, --rounds times each) against the local
          Trino with the listener on (as `santelake up` configures it), then off (the
          listener's file removed, Trino restarted), then on again. Prints each query's
          median and the suite's median ratio off/on.

The local stack must be up (santelake up). Figures go to docs/benchmarks.md.

usage: .venv/bin/python bench/audit.py [--part receiver latency] [--seconds 20] [--senders 4] [--rounds 15]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import time
from pathlib import Path
from typing import Any

BENCH_DATABASE = "santelake_audit_bench"
# What a researcher runs (alice, project cardio_outcomes): counts, a group-by, a join, a filter.
SUITE = {
    "count": "SELECT count(*) FROM iceberg.snds.hospital_stays",
    "group by": "SELECT residence_department, count(*) FROM iceberg.snds.beneficiaries GROUP BY 1 ORDER BY 1",
    "join": "SELECT b.sex_code, count(*) FROM iceberg.snds.hospital_stays s JOIN iceberg.snds.beneficiaries b "
            "ON s.person_id = b.person_id GROUP BY 1",
    "filter": "SELECT count(*) FROM iceberg.snds.hospital_stays WHERE admission_date >= DATE '2023-01-01'",
}


QUERY_TEXT = ("SELECT column_0, column_1, column_2, column_3, column_4, column_5, column_6, column_7, column_8, "
              "column_9, column_10, column_11 FROM iceberg.snds.hospital_stays "
              "WHERE admission_date >= DATE '2023-01-01'")


def _event(n: int) -> dict[str, Any]:
    """A completed-query event shaped and sized like Trino's (about 3 KB)."""
    query_id = f"20261202_000000_{n % 100000:05d}_bench"
    columns = [{"name": f"column_{i}", "type": "varchar"} for i in range(12)]
    return {
        "metadata": {"queryId": query_id, "query": QUERY_TEXT,
                     "queryState": "FINISHED", "tables": [], "routines": [], "uri": "https://localhost/v1/query"},
        "context": {"user": "alice", "groups": ["cardio_outcomes", "researchers"], "source": "bench",
                    "userAgent": "bench/1", "remoteClientAddress": "127.0.0.1", "serverVersion": "476",
                    "environment": "santelake", "queryType": "SELECT", "sessionProperties": {}},
        "ioMetadata": {"inputs": [{"catalogName": "iceberg", "schema": "snds", "table": "hospital_stays",
                                   "columns": columns, "connectorName": "iceberg"}]},
        "statistics": {"outputRows": 42, "outputBytes": 1024, "cpuTime": 0.5, "wallTime": 0.7},
        "createTime": "2026-12-02T00:00:00Z", "executionStartTime": "2026-12-02T00:00:00Z",
        "endTime": "2026-12-02T00:00:01Z",
    }


def _send(url: str, token: str, ca: str, first: int, step: int, deadline: float) -> list[float]:
    """One sender process: a keep-alive HTTPS session posting distinct events until ``deadline``."""
    import requests

    session = requests.Session()
    session.trust_env = False  # the platform CA, whatever REQUESTS_CA_BUNDLE says
    session.verify = ca
    latencies = []
    n = first
    while time.time() < deadline:
        body = json.dumps(_event(n))
        started = time.perf_counter()
        answer = session.post(url, data=body, timeout=30,
                              headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        latencies.append(time.perf_counter() - started if answer.status_code == 200 else -1.0)
        n += step
    return latencies


def receiver_part(layout: Any, seconds: float, senders: int) -> None:
    import os
    import subprocess
    import sys
    from concurrent.futures import ProcessPoolExecutor

    from santelake.audit.chain import verify
    from santelake.audit.receiver import TRINO_PATH
    from santelake.audit.store import AuditStore, install
    from santelake.runtime.services.audit import local_settings
    from santelake.runtime.services.postgres import Postgres, role_password_key

    postgres = Postgres(layout)
    passwords = {role: layout.secrets.get(role_password_key(role)) for role in ("audit_writer", "audit_reader")}
    install(lambda database: postgres.connect(database), passwords, BENCH_DATABASE)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = "bench-" + str(time.time_ns())
    # The product's receiver, as `santelake up` runs it, on the scratch trail; no Keycloak, no canary.
    settings = local_settings(layout)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANTELAKE_AUDIT_")}
    env |= settings.as_environment() | {"SANTELAKE_AUDIT_DB_NAME": BENCH_DATABASE, "SANTELAKE_AUDIT_PORT": str(port),
                                        "SANTELAKE_AUDIT_TOKEN": token, "SANTELAKE_AUDIT_KEYCLOAK_URL": "",
                                        "SANTELAKE_AUDIT_TRINO_URL": ""}
    env.pop("SANTELAKE_AUDIT_KEYCLOAK_SECRET", None)
    server = subprocess.Popen([str(Path(sys.executable).parent / "santelake"), "audit", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"https://localhost:{port}{TRINO_PATH}"
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.2)
        deadline = time.time() + seconds
        started = time.monotonic()
        with ProcessPoolExecutor(senders) as pool:
            parts = list(pool.map(_send, [url] * senders, [token] * senders, [str(layout.tls.ca_cert)] * senders,
                                  range(senders), [senders] * senders, [deadline] * senders))
        elapsed = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies = sorted(x for part in parts for x in part if x >= 0)
    errors = sum(1 for part in parts for x in part if x < 0)
    store = AuditStore(lambda: postgres.connect(BENCH_DATABASE))
    verdict = verify(store.records())
    conn = postgres.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"drop database {BENCH_DATABASE} with (force)")
    conn.close()
    print(f"receiver: {len(latencies)} events from {senders} sender processes in {elapsed:.1f} s: "
          f"{len(latencies) / elapsed:.0f} events/s sealed; answer p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
          f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms; {errors} errors; chain of "
          f"{verdict.records} records {'proven' if verdict.ok else 'NOT proven'}")


def _suite_times(layout: Any, rounds: int) -> dict[str, list[float]]:
    from santelake.access import query
    from santelake.access.token import dev_token

    token = dev_token(layout, "alice")
    times: dict[str, list[float]] = {name: [] for name in SUITE}
    from trino.exceptions import TrinoQueryError

    deadline = time.monotonic() + 120
    for sql in SUITE.values():  # a warm-up run each; a Trino just started may not list itself as a node yet
        while True:
            try:
                query.run(layout, token, sql)
                break
            except TrinoQueryError as exc:
                if exc.error_name != "NO_NODES_AVAILABLE" or time.monotonic() > deadline:
                    raise
                time.sleep(2)
    for _ in range(rounds):
        for name, sql in SUITE.items():
            started = time.perf_counter()
            query.run(layout, token, sql)
            times[name].append(time.perf_counter() - started)
    return times


def _restart_trino(layout: Any, listener: bool) -> None:
    from santelake.render.trino import AUDIT_LISTENER_FILE
    from santelake.runtime import process, stack
    from santelake.runtime.services.trino import Trino

    trino = Trino(layout)
    for spec in trino.processes():
        process.stop(spec)
    config = trino.etc / "config.properties"
    lines = config.read_text().splitlines()
    key = "event-listener.config-files="
    if listener:
        stack.up(layout, only=("trino",))  # writes every etc file again, the listener's line included
        return
    config.write_text("\n".join(line for line in lines if not line.startswith(key)) + "\n")
    (trino.etc / AUDIT_LISTENER_FILE).unlink(missing_ok=True)
    trino.clear_stale_launcher_pid()
    for spec in trino.processes():
        process.start(spec)
    deadline = time.monotonic() + 300
    while not trino.health().ok:
        if time.monotonic() > deadline:
            raise SystemExit("Trino did not come back within 5 minutes")
        time.sleep(2)


def latency_part(layout: Any, rounds: int) -> None:
    on = _suite_times(layout, rounds)
    _restart_trino(layout, listener=False)
    try:
        off = _suite_times(layout, rounds)
    finally:
        _restart_trino(layout, listener=True)
    print(f"{'query':10} {'audit on (median s)':>20} {'audit off (median s)':>21} {'on/off':>8}")
    ratios = []
    for name in SUITE:
        a, b = statistics.median(on[name]), statistics.median(off[name])
        ratios.append(a / b)
        print(f"{name:10} {a:20.3f} {b:21.3f} {a / b:8.3f}")
    print(f"median of the suite's ratios (on/off): {statistics.median(ratios):.3f} ({rounds} rounds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", nargs="+", choices=("receiver", "latency"), default=["receiver", "latency"])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--senders", type=int, default=4, help="sender processes (one keep-alive session each)")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    from santelake.config import load_settings
    from santelake.runtime.layout import Layout

    layout = Layout(load_settings())
    if "receiver" in args.part:
        receiver_part(layout, args.seconds, args.senders)
    if "latency" in args.part:
        latency_part(layout, args.rounds)


if __name__ == "__main__":
    main()
