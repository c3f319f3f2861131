"""The audit trail's cost: the receiver's sustained events per second, and researcher query latency
with Trino's audit listener on and off.

receiver  A receiver (the product's code: santelake.audit.receiver) on a free loopback port,
          writing to a scratch trail database (santelake_audit_bench, dropped after), takes
          completed-query events the size of a real one from --senders concurrent HTTPS
          clients for --seconds. Prints events/s, the answer's p50/p99 and proves the chain.
latency   The researcher query suite (alice's, --rounds times each) against the local
          Trino with the listener on (as `santelake up` configures it), then off (the
          listener's file removed, Trino restarted), then on again. Prints each query's
          median and the suite's median ratio off/on.

The local stack must be up (santelake up). Figures go to docs/benchmarks.md.

usage: .venv/bin/python bench/audit.py [--part receiver latency] [--seconds 20] [--senders 8] [--rounds 15]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import threading
import time
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


def receiver_part(layout: Any, seconds: float, senders: int) -> None:
    import requests

    from santelake.audit.chain import verify
    from santelake.audit.receiver import TRINO_PATH, PolicyIdentity, Receiver, serve
    from santelake.audit.store import WRITER, AuditStore, install
    from santelake.runtime.services.postgres import Postgres, role_password_key

    postgres = Postgres(layout)
    passwords = {role: layout.secrets.get(role_password_key(role)) for role in ("audit_writer", "audit_reader")}
    install(lambda database: postgres.connect(database), passwords, BENCH_DATABASE)
    store = AuditStore(lambda: postgres.connect(BENCH_DATABASE, WRITER, passwords[WRITER]))
    receiver = Receiver(store)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = "bench-" + str(time.time_ns())
    tls = layout.tls
    server = serve(receiver, "127.0.0.1", port, tls.server_cert, tls.server_key, token, PolicyIdentity(None))
    receiver.start()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://localhost:{port}{TRINO_PATH}"
    bodies = [json.dumps(_event(n)).encode() for n in range(1000)]
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def send(offset: int) -> None:
        nonlocal errors
        session = requests.Session()
        session.verify = str(tls.ca_cert)
        n = offset
        mine: list[float] = []
        while time.monotonic() < deadline:
            started = time.perf_counter()
            answer = session.post(url, data=bodies[n % len(bodies)], timeout=30,
                                  headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            mine.append(time.perf_counter() - started)
            if answer.status_code != 200:
                with lock:
                    errors += 1
            n += senders
        with lock:
            latencies.extend(mine)

    started = time.monotonic()
    threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    server.shutdown()
    receiver.stop()
    verdict = verify(store.records())
    store.close()
    conn = postgres.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"drop database {BENCH_DATABASE} with (force)")
    conn.close()
    latencies.sort()
    print(f"receiver: {len(latencies)} events from {senders} senders in {elapsed:.1f} s: "
          f"{len(latencies) / elapsed:.0f} events/s; answer p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
          f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms; {errors} errors; chain of "
          f"{verdict.records} records {'proven' if verdict.ok else 'NOT proven'}")


def _suite_times(layout: Any, rounds: int) -> dict[str, list[float]]:
    from santelake.access import query
    from santelake.access.token import dev_token

    token = dev_token(layout, "alice")
    times: dict[str, list[float]] = {name: [] for name in SUITE}
    for sql in SUITE.values():  # a warm-up run each
        query.run(layout, token, sql)
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
    parser.add_argument("--senders", type=int, default=8)
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
