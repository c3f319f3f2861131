"""The audit receiver: an HTTPS endpoint Trino's ``http`` event listener posts every query event to.

An event is answered 200 only once it is sealed into the chain and committed; anything else
(the database down, a full queue) is answered 503, and Trino's listener retries it. One
writer thread seals what the request threads queue, in batches, so the chain has one order.
Every ``anchor_interval`` seconds the head is anchored outside the database (``AnchorSink``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from santelake.audit.chain import Anchor
from santelake.audit.store import AuditStore, Entry

log = logging.getLogger("santelake.audit")

TRINO_PATH = "/v1/events/trino"
SANTELAKE_PATH = "/v1/events/santelake"
HEALTH_PATH = "/v1/health"
# Trino's listener posts one event per request; a query's text is at most 1 MB by default.
MAX_BODY = 16 * 1024 * 1024
BATCH = 500
ANSWER_WITHIN = 30.0
# A connection that says nothing for this long is closed (handshake and requests alike).
CONNECTION_TIMEOUT = 60.0


class AnchorSink(Protocol):
    def put(self, anchor: Anchor) -> None: ...


# Parts of a completed event that describe how Trino ran the query, not who read what: the plans,
# the output stage's JSON and per-operator statistics. Three quarters of a group-by's event
# (about 170 of 236 KB); left out, and named in docs/compliance.md.
ENGINE_DETAIL = {"metadata": ("plan", "jsonPlan", "payload"),
                 "statistics": ("operatorSummaries", "taskStatistics", "planNodeStatsAndCosts",
                                "optimizerRulesSummaries", "outputBufferUtilization")}


def trino_entry(event: Any, policy: dict[str, str]) -> Entry:
    """An entry for one event of Trino's ``http`` listener (a QueryCreatedEvent or QueryCompletedEvent).

    The event is kept but for the engine's detail (``ENGINE_DETAIL``); the policy identity in force
    when it arrived is added beside it.
    """
    if not isinstance(event, dict) or not isinstance(event.get("metadata"), dict):
        raise ValueError("not a Trino query event: no metadata object")
    query_id = event["metadata"].get("queryId")
    if not isinstance(query_id, str) or not query_id:
        raise ValueError("not a Trino query event: no metadata.queryId")
    context = event.get("context")
    if not isinstance(context, dict):
        context = {}
    completed = "endTime" in event or "statistics" in event
    for part, keys in ENGINE_DETAIL.items():
        if isinstance(event.get(part), dict):
            event[part] = {k: v for k, v in event[part].items() if k not in keys}
    return Entry(kind="trino.query_completed" if completed else "trino.query_created",
                 actor=str(context.get("user") or ""), subject=query_id,
                 payload={"event": event, "policy": policy})


def santelake_entry(body: Any) -> Entry:
    """An entry for what santelake reports about itself (``santelake.audit.client``)."""
    from santelake.audit.client import KINDS

    if not isinstance(body, dict):
        raise ValueError("not a santelake event: a JSON object with kind, actor, subject and payload")
    kind, who, subject = body.get("kind"), body.get("actor"), body.get("subject")
    if kind not in KINDS:
        raise ValueError(f"not a santelake event: kind {kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(who, str) or not who or not isinstance(subject, str):
        raise ValueError("not a santelake event: actor (non-empty) and subject must be text")
    return Entry(kind=f"santelake.{kind}", actor=who, subject=subject, payload=body.get("payload"))


@dataclass
class PolicyIdentity:
    """The identity of the access rules in force: the SHA-256 of the rules file Trino reads, and the
    policies' revision as written beside it (``identity_file``, JSON with ``revision``)."""

    rules_file: Path | None
    identity_file: Path | None = None
    _cache: tuple[Any, dict[str, str]] | None = field(default=None, repr=False)

    def current(self) -> dict[str, str]:
        stamp = tuple(_stamp(p) for p in (self.rules_file, self.identity_file))
        if self._cache is not None and self._cache[0] == stamp:
            return self._cache[1]
        identity = {"rules_sha256": "", "revision": ""}
        if self.rules_file is not None and self.rules_file.exists():
            identity["rules_sha256"] = hashlib.sha256(self.rules_file.read_bytes()).hexdigest()
        if self.identity_file is not None and self.identity_file.exists():
            with contextlib.suppress(ValueError, OSError):
                identity["revision"] = str(json.loads(self.identity_file.read_text()).get("revision", ""))
        self._cache = (stamp, identity)
        return identity


def _stamp(path: Path | None) -> tuple[float, int] | None:
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime, stat.st_size)


class EventSource(Protocol):
    """Events kept elsewhere that the receiver copies in (Keycloak's: santelake.audit.keycloak)."""

    def since(self, kind: str, cursor: Any) -> list[dict[str, Any]]: ...

    def username(self, user_id: str) -> str: ...


class Canary(Protocol):
    """Runs a query on Trino and returns its id (santelake.audit.canary.TrinoCanary)."""

    def run(self) -> str: ...


class Receiver:
    """Seals queued entries in order; anchors the head; copies Keycloak's events in."""

    def __init__(self, store: AuditStore, anchors: AnchorSink | None = None, anchor_interval: float = 60.0,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 keycloak: EventSource | None = None, collect_interval: float = 5.0,
                 canary: Canary | None = None, canary_interval: float = 300.0, canary_patience: float = 60.0) -> None:
        self.store = store
        self.anchors = anchors
        self.anchor_interval = anchor_interval
        self.clock = clock
        self.keycloak = keycloak
        self.collect_interval = collect_interval
        self._queue: queue.Queue[tuple[Entry, Future[int]]] = queue.Queue(maxsize=10_000)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._collector = threading.Thread(target=self._collect, name="audit-keycloak", daemon=True)
        self.canary = canary
        self.canary_interval = canary_interval
        self.canary_patience = canary_patience
        self._watcher = threading.Thread(target=self._watch, name="audit-canary", daemon=True)
        # Query ids of the completed events sealed lately (the canary looks its own up).
        self._completed: dict[str, None] = {}
        self._anchored: int | None = None

    def start(self) -> None:
        self._thread.start()
        if self.keycloak is not None:
            self._collector.start()
        if self.canary is not None:
            self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in (self._collector, self._watcher):
            if thread.is_alive():
                thread.join(timeout=40)
        self._thread.join(timeout=10)

    def sealed_completion(self, query_id: str) -> bool:
        """Whether the completed event of ``query_id`` was sealed since this receiver started."""
        return query_id in self._completed

    def check_listener(self) -> str | None:
        """Run the canary; the query id of a canary whose event did not arrive (recorded as such), else None."""
        from santelake.audit.canary import SILENT_KIND

        assert self.canary is not None
        query_id = self.canary.run()
        deadline = time.monotonic() + self.canary_patience
        while not self.sealed_completion(query_id):
            if time.monotonic() > deadline or self._stop.is_set():
                break
            time.sleep(0.5)
        else:
            return None
        if self._stop.is_set():
            return None
        self.submit(Entry(SILENT_KIND, "santelake-audit", query_id, {
            "what": "Trino ran the canary query but its completed event did not reach the trail: the audit "
                    "listener is off or sends elsewhere", "waited_seconds": self.canary_patience}))
        log.error("audit: Trino's listener is silent (canary %s): recorded", query_id)
        return query_id

    def _watch(self) -> None:
        while not self._stop.wait(self.canary_interval):
            try:
                self.check_listener()
            except Exception as exc:
                log.warning("audit: the canary query did not run (Trino down?): %s", exc)

    def collect_once(self, cursors: dict[str, Any]) -> int:
        """Copy what Keycloak holds past ``cursors`` into the chain, one event at a time, oldest first;
        each cursor moves past an event once it is committed. How many were copied."""
        from santelake.audit import keycloak

        assert self.keycloak is not None
        copied = 0
        for kind in keycloak.STREAMS:
            for event in self.keycloak.since(kind, cursors[kind]):
                self.submit(keycloak.entry(kind, event, self.keycloak.username))
                cursors[kind].advance(event)
                copied += 1
        return copied

    def _collect(self) -> None:
        from santelake.audit import keycloak

        cursors: dict[str, Any] | None = None
        while not self._stop.is_set():
            try:
                if cursors is None:
                    cursors = keycloak.cursor_from(iter(self.store.newest("keycloak.")))
                self.collect_once(cursors)
            except Exception as exc:
                log.warning("audit: Keycloak's events not copied yet, retrying in %.0f s: %s",
                            self.collect_interval, exc)
            self._stop.wait(self.collect_interval)

    def submit(self, entry: Entry, timeout: float = ANSWER_WITHIN) -> int:
        """Seal ``entry``; its sequence number once committed. Raises if it could not be, in time."""
        future: Future[int] = Future()
        self._queue.put((entry, future), timeout=timeout)
        return future.result(timeout=timeout)

    def _run(self) -> None:
        next_anchor = time.monotonic() + self.anchor_interval
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.5)
            except queue.Empty:
                first = None
            batch = [first] if first is not None else []
            while first is not None and len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if batch:
                self._seal(batch)
            if self.anchors is not None and time.monotonic() >= next_anchor:
                self.anchor()
                next_anchor = time.monotonic() + self.anchor_interval

    def _seal(self, batch: list[tuple[Entry, Future[int]]]) -> None:
        try:
            records = self.store.append([entry for entry, _ in batch])
        except Exception as exc:
            log.error("audit: %d events not stored, the senders will retry: %s", len(batch), exc)
            for _, future in batch:
                future.set_exception(exc)
            return
        for (entry, future), record in zip(batch, records, strict=True):
            if entry.kind == "trino.query_completed":
                self._completed[entry.subject] = None
            future.set_result(record.seq)
        while len(self._completed) > 10_000:
            del self._completed[next(iter(self._completed))]

    def anchor(self) -> Anchor | None:
        """Anchor the head if it moved since the last anchor; the anchor, or None."""
        if self.anchors is None:
            return None
        try:
            seq, head = self.store.head()
            if seq == 0 or seq == self._anchored:
                return None
            anchor = Anchor(seq, head, self.clock())
            self.anchors.put(anchor)
        except Exception as exc:
            log.error("audit: the head could not be anchored, retrying in %.0f s: %s", self.anchor_interval, exc)
            return None
        self._anchored = seq
        return anchor


def serve(receiver: Receiver, host: str, port: int, cert: Path, key: Path, token: str,
          policy: PolicyIdentity) -> ThreadingHTTPServer:
    """An HTTPS server feeding ``receiver``; requests must carry ``Authorization: Bearer <token>``."""
    if not token:
        raise ValueError("the audit receiver needs a non-empty token")
    expected = f"Bearer {token}".encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "santelake-audit"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("audit receiver: " + format, *args)

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path != HEALTH_PATH:
                self._answer(404, {"error": f"no such path {self.path}"})
                return
            probe = AuditStore(receiver.store.connect)  # a connection of its own: the writer's is busy
            try:
                seq, _ = probe.head()
            except Exception as exc:
                self._answer(503, {"error": f"the trail's database does not answer: {type(exc).__name__}"})
                return
            finally:
                probe.close()
            self._answer(200, {"head": seq})

        def do_POST(self) -> None:
            if self.path not in (TRINO_PATH, SANTELAKE_PATH):
                self._answer(404, {"error": f"no such path {self.path}"})
                return
            if not hmac.compare_digest(self.headers.get("Authorization", "").encode(), expected):
                self._answer(401, {"error": "a valid bearer token is required"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = 0
            if length <= 0 or length > MAX_BODY:
                self._answer(413 if length > MAX_BODY else 400, {"error": f"a body of 1 to {MAX_BODY} bytes"})
                return
            body = self.rfile.read(length)
            if self.path == SANTELAKE_PATH:
                try:
                    entry = santelake_entry(json.loads(body))
                except ValueError as exc:
                    self._answer(400, {"error": str(exc)})  # santelake's own client: it says what it sent wrong
                    return
                self._submit(entry)
                return
            try:
                event = json.loads(body)
                entry = trino_entry(event, policy.current())
            except ValueError as exc:
                # Kept, not dropped: an event santelake cannot read is still a record of something.
                log.error("audit: an unreadable event from %s: %s", self.client_address[0], exc)
                entry = Entry("trino.unreadable", "", "", {"error": str(exc),
                                                           "body": body.decode("utf-8", errors="replace")})
            self._submit(entry)

        def _submit(self, entry: Entry) -> None:
            try:
                seq = receiver.submit(entry)
            except (queue.Full, FutureTimeout):
                self._answer(503, {"error": "the trail is busy; retry"})
                return
            except Exception as exc:
                self._answer(503, {"error": f"not stored ({type(exc).__name__}); retry"})
                return
            self._answer(200, {"seq": seq})

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    server = _TLSServer((host, port), Handler, context)
    server.daemon_threads = True
    return server


class _TLSServer(ThreadingHTTPServer):
    """Each connection's TLS handshake in its own thread, with a deadline: a slow or silent client
    never holds up the others (a handshake in the accepting thread would)."""

    def __init__(self, address: tuple[str, int], handler: Any, context: ssl.SSLContext) -> None:
        self.context = context
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(CONNECTION_TIMEOUT)
        # An answer's headers and body leave in two writes; without this, Nagle's algorithm holds the
        # second until the client's delayed ACK (40 ms): measured as a 47 ms answer for 2 ms of work.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            secured = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("audit receiver: TLS handshake with %s failed: %s", client_address, exc)
            return
        self.RequestHandlerClass(secured, client_address, self)  # type: ignore[arg-type]
