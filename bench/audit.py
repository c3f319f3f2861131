"""The audit trail's cost: the receiver's sustained events per second, and researcher query latency
with Trino's audit listener on and off.

receiver  The product's receiver (`santelake audit serve`, its own process) on a free loopback
          port, writing to a scratch trail database (santelake_audit_bench, dropped after),
          takes distinct completed-query events shaped like Trino's from --senders processes
          (one keep-alive HTTPS session each) for --seconds. Prints events/s, the answer's
          p50/p99 and proves the chain.
latency   The researcher query suite (alice's, --rounds times each) against the local
          Trino, restarted before each of --modes (default: on off on off, so that neither
          side gains from running first or on a longer-warmed JIT): `on` as `santelake up`
          configures it; `off` with the listener's file removed; `sink` with the listener
          posting to a bench-local HTTPS endpoint that answers 200 at once, which sets
          Trino's own cost of the events apart from the receiver's and PostgreSQL's. Prints
          each query's median per mode and the suite's median ratio to `off`.

The local stack must be up (santelake up). Figures go to docs/benchmarks.md.

usage: .venv/bin/python bench/audit.py [--part receiver latency] [--seconds 20] [--senders 4] [--rounds 15]
                                       [--modes on off on off sink]
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


@contextlib.contextmanager
def _sink(layout: Any) -> Any:
    """An HTTPS endpoint on loopback that answers every POST 200 at once and keeps nothing; its URL."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(layout.tls.server_cert, layout.tls.server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://{layout.settings.hostname}:{server.server_address[1]}/v1/events/trino"
    finally:
        server.shutdown()


def _restart_trino(layout: Any, mode: str, sink_url: str = "") -> None:
    """Trino restarted with its listener on (as configured), off, or posting to ``sink_url``."""
    from santelake.policy.build import build
    from santelake.render.trino import AUDIT_LISTENER_FILE
    from santelake.runtime import process
    from santelake.runtime.services.trino import Trino

    trino = Trino(layout)
    for spec in trino.processes():
        process.stop(spec)
    trino.write_etc(build().compiled)  # every etc file as `santelake up` writes it, the listener's included
    config = trino.etc / "config.properties"
    listener = trino.etc / AUDIT_LISTENER_FILE
    if mode == "off":
        key = "event-listener.config-files="
        config.write_text("\n".join(line for line in config.read_text().splitlines()
                                    if not line.startswith(key)) + "\n")
        listener.unlink(missing_ok=True)
    elif mode == "sink":
        key = "http-event-listener.connect-ingest-uri="
        listener.write_text("\n".join(f"{key}{sink_url}" if line.startswith(key) else line
                                      for line in listener.read_text().splitlines()) + "\n")
    trino.clear_stale_launcher_pid()
    for spec in trino.processes():
        process.start(spec)
    deadline = time.monotonic() + 300
    while not trino.health().ok:
        if time.monotonic() > deadline:
            raise SystemExit("Trino did not come back within 5 minutes")
        time.sleep(2)


def latency_part(layout: Any, rounds: int, modes: list[str]) -> None:
    times: dict[str, dict[str, list[float]]] = {}
    with _sink(layout) as sink_url:
        try:
            for mode in modes:
                _restart_trino(layout, mode, sink_url)
                for name, values in _suite_times(layout, rounds).items():
                    times.setdefault(mode, {}).setdefault(name, []).extend(values)
        finally:
            _restart_trino(layout, "on")
    shown = list(dict.fromkeys(modes))
    print(f"{'query':10} " + " ".join(f"{mode + ' (median s)':>18}" for mode in shown)
          + " " + " ".join(f"{mode + '/off':>10}" for mode in shown if mode != "off"))
    ratios: dict[str, list[float]] = {mode: [] for mode in shown if mode != "off"}
    for name in SUITE:
        medians = {mode: statistics.median(times[mode][name]) for mode in shown}
        line = f"{name:10} " + " ".join(f"{medians[mode]:18.3f}" for mode in shown)
        if "off" in medians:
            for mode in ratios:
                ratios[mode].append(medians[mode] / medians["off"])
            line += " " + " ".join(f"{medians[mode] / medians['off']:10.3f}" for mode in ratios)
        print(line)
    for mode, values in ratios.items():
        if values:
            print(f"median of the suite's ratios ({mode}/off): {statistics.median(values):.3f} "
                  f"({rounds} rounds a mode run, {modes.count(mode)} run(s) of {mode}, {modes.count('off')} of off)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", nargs="+", choices=("receiver", "latency"), default=["receiver", "latency"])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--senders", type=int, default=4, help="sender processes (one keep-alive session each)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--modes", nargs="+", choices=("on", "off", "sink"), default=["on", "off", "on", "off"],
                        help="Trino restarted before each, in this order (default: on off on off)")
    args = parser.parse_args()
    from santelake.config import load_settings
    from santelake.runtime.layout import Layout

    layout = Layout(load_settings())
    if "receiver" in args.part:
        receiver_part(layout, args.seconds, args.senders)
    if "latency" in args.part:
        latency_part(layout, args.rounds, args.modes)


if __name__ == "__main__":
    main()
