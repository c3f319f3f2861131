"""The audit trail on the real local stack: Trino's listener posts every query to the receiver, the
receiver seals it into the chain in PostgreSQL, compliance reads it through Trino's ``audit``
catalog, and `santelake audit verify` names the first record a superuser tampered with."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from santelake.access import query
from santelake.access.token import dev_token
from santelake.audit.gaps import QUERY_ID
from santelake.audit.store import DATABASE
from santelake.runtime import process
from santelake.runtime.layout import Layout
from santelake.runtime.services.audit import AuditReceiver
from santelake.runtime.services.postgres import Postgres

pytestmark = pytest.mark.integration
SANTELAKE = str(Path(sys.executable).parent / "santelake")


def _run(layout: Layout, user: str, sql: str) -> tuple[str, Any]:
    """``sql`` as ``user``: its query id, and its rows or the error it failed with."""
    from trino.exceptions import TrinoQueryError

    conn = query.connect(layout, dev_token(layout, user))
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return cur.query_id, cur.fetchall()
    except TrinoQueryError as exc:
        return exc.query_id or cur.query_id, exc
    finally:
        conn.close()


def _trail(layout: Layout, query_ids: list[str], timeout: float = 60) -> dict[str, dict[str, Any]]:
    """The completed-query rows compliance reads for ``query_ids``, waiting for them to arrive."""
    ids = ", ".join(f"'{q}'" for q in query_ids)
    sql = (f"SELECT query_id, user_name, groups, source, user_agent, client_address, query, inputs, output_rows, "
           f"error_code, error_message, create_time, end_time, policy_rules_sha256, policy_revision "
           f"FROM audit.audit.queries WHERE completed AND query_id IN ({ids})")
    deadline = time.monotonic() + timeout
    while True:
        names, rows = query.run(layout, dev_token(layout, "chloe"), sql)
        found = {row[0]: dict(zip(names, row, strict=True)) for row in rows}
        if len(found) == len(set(query_ids)) or time.monotonic() > deadline:
            return found
        time.sleep(1)


def _verify(layout: Layout) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANTELAKE_AUDIT_")}
    return subprocess.run([SANTELAKE, "--state-dir", str(layout.settings.state_dir), "audit", "verify"],
                          capture_output=True, text=True, timeout=300, env=env, check=False)


def test_allowed_failed_and_denied_queries_are_each_recorded_with_who_what_and_the_policy(layout: Layout) -> None:
    allowed, rows = _run(layout, "alice", "SELECT count(*) FROM iceberg.snds.beneficiaries")
    failed, error = _run(layout, "alice", "SELECT 1 / 0")
    denied, refusal = _run(layout, "alice", "SELECT count(*) FROM iceberg.ops.ingested_files")
    assert isinstance(rows, list) and rows[0][0] > 0
    assert getattr(error, "error_name", None) == "DIVISION_BY_ZERO"
    assert getattr(refusal, "error_name", None) == "PERMISSION_DENIED"

    trail = _trail(layout, [allowed, failed, denied])
    assert set(trail) == {allowed, failed, denied}
    rules = (layout.service_dir("trino") / "etc" / "rules.json").read_bytes()
    for record in trail.values():
        assert record["user_name"] == "alice"
        assert "project_cardio_outcomes" in json.loads(record["groups"])
        assert record["user_agent"] and record["client_address"]
        assert record["create_time"] and record["end_time"]
        assert record["policy_rules_sha256"] == hashlib.sha256(rules).hexdigest()
        assert record["policy_revision"]
    ok = trail[allowed]
    assert ok["query"] == "SELECT count(*) FROM iceberg.snds.beneficiaries"
    assert (ok["error_code"], ok["output_rows"]) == (None, 1)
    inputs = json.loads(ok["inputs"])
    assert [(i["catalogName"], i["schema"], i["table"]) for i in inputs] == [("iceberg", "snds", "beneficiaries")]
    assert trail[failed]["error_code"] == "DIVISION_BY_ZERO"
    assert trail[denied]["error_code"] == "PERMISSION_DENIED"
    assert "ingested_files" in trail[denied]["query"] and "Access Denied" in trail[denied]["error_message"]


@pytest.mark.parametrize("user", ["dana", "alice", "pat"])
def test_no_one_but_compliance_reads_the_trail(layout: Layout, user: str) -> None:
    _, refusal = _run(layout, user, "SELECT count(*) FROM audit.audit.records")
    assert getattr(refusal, "error_name", None) == "PERMISSION_DENIED", refusal
    _, rows = _run(layout, "chloe", "SELECT count(*) FROM audit.audit.records")
    assert isinstance(rows, list) and rows[0][0] > 0


def test_compliance_reads_but_cannot_change_the_trail(layout: Layout) -> None:
    _, refusal = _run(layout, "chloe", "DELETE FROM audit.audit.records")
    assert getattr(refusal, "error_name", None) == "PERMISSION_DENIED", refusal


def test_the_receivers_account_cannot_change_what_it_wrote(layout: Layout) -> None:
    import psycopg2

    from santelake.runtime.services.audit import local_settings

    conn = local_settings(layout).connect()
    try:
        for statement in ("UPDATE audit.records SET actor = 'x' WHERE seq = 1", "DELETE FROM audit.records",
                          "TRUNCATE audit.records"):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege), conn, conn.cursor() as cur:
                cur.execute(statement)
    finally:
        conn.close()


@contextlib.contextmanager
def _as_superuser(layout: Layout) -> Iterator[Any]:
    """The trail's database as its superuser, with the append-only trigger off (what a rogue DBA can do)."""
    conn = Postgres(layout).connect(DATABASE)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET session_replication_role = replica")
            yield cur
    finally:
        conn.close()


def _row(layout: Layout, seq: int) -> tuple[Any, ...]:
    with _as_superuser(layout) as cur:
        cur.execute("SELECT seq, recorded_at, kind, actor, subject, payload, prev_hash, hash "
                    "FROM audit.records WHERE seq = %s", (seq,))
        row = cur.fetchone()
    assert row is not None
    return tuple(row)


def _put_back(layout: Layout, rows: list[tuple[Any, ...]]) -> None:
    with _as_superuser(layout) as cur:
        cur.execute("DELETE FROM audit.records WHERE seq = ANY(%s)", ([r[0] for r in rows],))
        for row in rows:
            cur.execute("INSERT INTO audit.records VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", row)


def _gaps_of(verified: subprocess.CompletedProcess[str], ids: list[str]) -> list[str]:
    """The gaps verify reports that concern these queries: a missing number between the lowest and
    the highest of them on their coordinator, or a lost half of one of them.

    Elsewhere in a session's trail, a number can be missing without any fault: a statement a client
    sent and abandoned before Trino dispatched it takes a number and sends no event (seen once,
    query 00236 of a run, with no TIMELINE line in Trino's log). verify reports it, by design."""
    numbers = [QUERY_ID.match(q) for q in ids]
    coordinators = {m["coordinator"] for m in numbers if m}
    low, high = min(int(m["n"]) for m in numbers if m), max(int(m["n"]) for m in numbers if m)

    def concerns(line: str) -> bool:
        span = re.search(r"_(\d{5})(?: to (\d{5}))?_([a-z0-9]+): no event", line)
        if span:
            return span[3] in coordinators and int(span[1]) <= high and int(span[2] or span[1]) >= low
        return any(q in line for q in ids)
    return [line for line in verified.stderr.splitlines() if concerns(line)]


def test_a_record_edited_deleted_or_reordered_by_the_superuser_is_named_by_verify(layout: Layout) -> None:
    for _ in range(3):
        _run(layout, "alice", "SELECT 1")
    first = _verify(layout)
    # Proven (0), perhaps with a number missing elsewhere in the session (2, see _gaps_of); never 1.
    assert first.returncode in (0, 2), first.stdout + first.stderr
    with _as_superuser(layout) as cur:
        cur.execute("SELECT max(seq) FROM audit.records")
        head = int(cur.fetchone()[0])
    target = head - 2
    original = [_row(layout, target), _row(layout, target + 1)]
    try:
        with _as_superuser(layout) as cur:
            cur.execute("UPDATE audit.records SET actor = 'nobody' WHERE seq = %s", (target,))
        edited = _verify(layout)
        assert edited.returncode == 1 and f"record {target}: " in edited.stderr and "edited" in edited.stderr
        _put_back(layout, original)

        with _as_superuser(layout) as cur:
            cur.execute("DELETE FROM audit.records WHERE seq = %s", (target,))
        deleted = _verify(layout)
        assert deleted.returncode == 1 and f"record {target}: " in deleted.stderr and "deleted" in deleted.stderr
        _put_back(layout, original)

        with _as_superuser(layout) as cur:
            cur.execute("UPDATE audit.records SET seq = -seq WHERE seq IN (%s, %s)", (target, target + 1))
            cur.execute("UPDATE audit.records SET seq = %s WHERE seq = %s", (target, -(target + 1)))
            cur.execute("UPDATE audit.records SET seq = %s WHERE seq = %s", (target + 1, -target))
        reordered = _verify(layout)
        assert reordered.returncode == 1 and f"record {target}: " in reordered.stderr
    finally:
        _put_back(layout, original)
    again = _verify(layout)
    assert (again.returncode, again.stderr) == (first.returncode, first.stderr), again.stdout + again.stderr


def test_a_receiver_killed_during_200_queries_loses_none_of_them(layout: Layout) -> None:
    """Trino keeps what it could not deliver and retries; after the receiver's restart every query
    is in the trail (or verify reports the gap: here, with a short outage, there must be none)."""
    from santelake.runtime import stack

    receiver = AuditReceiver(layout)
    pid = process.read_pid(receiver.processes()[0].pid_file)
    assert pid
    conn = query.connect(layout, dev_token(layout, "alice"))
    ids: list[str] = []
    try:
        for n in range(200):
            if n == 50:
                os.kill(pid, signal.SIGKILL)
            if n == 150:
                stack.up(layout, only=("audit",))
            cur = conn.cursor()
            cur.execute(f"SELECT {n}")
            cur.fetchall()
            ids.append(cur.query_id)
    finally:
        conn.close()
        if not AuditReceiver(layout).health().ok:
            stack.up(layout, only=("audit",))
    # Both events of each query: Trino retries each on its own schedule (1 s, doubling, at most a minute).
    sql = (f"SELECT count(*) FROM audit.audit.queries WHERE query_id IN ({', '.join(repr(q) for q in ids)})")
    deadline, events = time.monotonic() + 180, 0
    while events < 400 and time.monotonic() < deadline:
        events = query.run(layout, dev_token(layout, "chloe"), sql)[1][0][0]
        time.sleep(2)
    assert events == 400, f"{400 - events} of the 200 queries' 400 events missing from the trail"
    verified = _verify(layout)
    assert verified.returncode in (0, 2), verified.stdout + verified.stderr  # the chain is proven
    assert not _gaps_of(verified, ids), verified.stderr


def test_logins_failed_logins_and_admin_changes_are_copied_from_keycloak(layout: Layout) -> None:
    import requests

    from santelake.render.keycloak import CLI_CLIENT
    from santelake.runtime.services.keycloak import Keycloak

    dev_token(layout, "bob")  # a login (the password grant, tests only)
    refused = requests.post(f"{layout.keycloak_issuer}/protocol/openid-connect/token", timeout=30,
                            verify=str(layout.tls.ca_cert),
                            data={"grant_type": "password", "client_id": CLI_CLIENT, "username": "bob",
                                  "password": "not-bobs-password"})
    assert refused.json().get("error") == "invalid_grant", refused.text
    admin = Keycloak(layout).admin()
    marker = f"audit-{time.time_ns()}"
    group = admin.create_group({"name": marker})
    admin.delete_group(group)
    sql = ("SELECT kind, actor, subject FROM audit.audit.records WHERE kind LIKE 'keycloak.%' "
           "AND recorded_at > current_timestamp - INTERVAL '5' MINUTE ORDER BY seq")
    deadline = time.monotonic() + 60
    while True:
        rows = {tuple(r) for r in query.run(layout, dev_token(layout, "chloe"), sql)[1]}
        subjects = {(kind, actor, subject.split(" ")[0]) for kind, actor, subject in rows}
        wanted = {("keycloak.event", "bob", "LOGIN"), ("keycloak.event", "bob", "LOGIN_ERROR")}
        changes = [r for r in rows if r[0] == "keycloak.admin_event" and r[2].startswith(("CREATE groups",
                                                                                       "DELETE groups"))]
        if (wanted <= subjects and len(changes) >= 2) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert wanted <= subjects, sorted(rows)
    assert {c[2].split(" ")[0] for c in changes} >= {"CREATE", "DELETE"}, sorted(rows)
    assert all(c[1] for c in changes), "an admin change names who made it"


def test_a_policy_apply_and_a_load_are_recorded_with_who_and_what(layout: Layout, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from santelake.access.enforce import apply
    from santelake.ingest.landing import Landing, load_waiting
    from santelake.policy.build import build
    from santelake.runtime.backup import LocalSite
    from santelake.runtime.platform import platform_settings
    from santelake.runtime.services.audit import client_environment
    from santelake.synth import synthesize

    for name, value in client_environment(layout).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SANTELAKE_ACTOR", "test-operator")
    platform = platform_settings(layout)
    head = query.run(layout, dev_token(layout, "chloe"), "SELECT max(seq) FROM audit.audit.records")[1][0][0]

    apply(platform, build().compiled)
    report = synthesize(tmp_path / "extracts", scale=50, seed=time.time_ns() % 2**31)
    item = next(f for f in report.files if f.table == "beneficiaries")
    # The stack's ingest DAG polls this landing bucket every 30 s: a run of it that listed the
    # extract while this load ran would load it too and record "already-published" (CI met it).
    # Paused, and its running loads waited for, so this load is the extract's only one.
    site = LocalSite(layout)
    site.pause_ingest()
    try:
        deadline = time.monotonic() + 300
        while site.running_load_tasks():
            assert time.monotonic() < deadline, "the ingest DAG's loads did not end"
            time.sleep(2)
        key = Landing.of(platform).land(item.table, Path(item.path), f"audited-{time.time_ns()}.csv")
        outcomes = load_waiting(platform)
    finally:
        site.unpause_ingest()
    assert [o.status for o in outcomes if o.key == key] == ["published"]

    names, rows = query.run(layout, dev_token(layout, "chloe"),
                            f"SELECT kind, actor, subject, payload FROM audit.audit.records "
                            f"WHERE seq > {head} AND kind LIKE 'santelake.%' ORDER BY seq")
    records = [dict(zip(names, row, strict=True)) for row in rows]
    applied = [r for r in records if r["kind"] == "santelake.policy.apply"]
    loaded = [r for r in records if r["kind"] == "santelake.load" and r["subject"] == key]
    assert len(applied) == 1 and len(loaded) == 1, records
    assert applied[0]["actor"] == "test-operator"
    identity = json.loads(applied[0]["payload"])["identity"]
    rules = (layout.service_dir("trino") / "etc" / "rules.json").read_bytes()
    assert identity["rules_sha256"] == hashlib.sha256(rules).hexdigest() and identity["revision"]
    load = json.loads(loaded[0]["payload"])
    assert load["status"] == "published" and load["result"]["table"] == "snds.beneficiaries"
    assert load["result"]["rows_read"] == item.rows


def test_a_retention_purge_removes_old_records_and_the_chain_stays_provable(layout: Layout) -> None:
    import datetime as dt

    _run(layout, "alice", "SELECT 'before the cut'")
    time.sleep(1.5)
    cut = dt.datetime.now(dt.UTC)
    time.sleep(1.5)
    after, _ = _run(layout, "alice", "SELECT 'after the cut'")
    assert _trail(layout, [after])
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANTELAKE_AUDIT_")}
    purged = subprocess.run([SANTELAKE, "--state-dir", str(layout.settings.state_dir), "audit", "purge",
                             "--before", cut.isoformat()], capture_output=True, text=True, timeout=300, env=env,
                            check=False)
    assert purged.returncode == 0 and "purged" in purged.stdout, purged.stdout + purged.stderr
    with _as_superuser(layout) as cur:
        cur.execute("SELECT count(*) FROM audit.records WHERE recorded_at < %s", (cut,))
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM audit.records WHERE kind = 'audit.purge'")
        assert cur.fetchone()[0] >= 1
    assert _trail(layout, [after])  # what came after the cut stays
    verified = _verify(layout)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # Without the purge record, the missing beginning is named.
    with _as_superuser(layout) as cur:
        cur.execute("SELECT seq, recorded_at, kind, actor, subject, payload, prev_hash, hash FROM audit.records "
                    "WHERE kind = 'audit.purge' ORDER BY seq DESC LIMIT 1")
        purge_row = tuple(cur.fetchone())
        cur.execute("SELECT min(seq) FROM audit.records")
        first = int(cur.fetchone()[0])
    try:
        with _as_superuser(layout) as cur:
            cur.execute("UPDATE audit.records SET payload = replace(payload, '\"through_seq\":', '\"through\":') "
                        "WHERE seq = %s", (purge_row[0],))
        broken = _verify(layout)
        assert broken.returncode == 1 and f"record {purge_row[0]}" in broken.stderr, broken.stderr
    finally:
        _put_back(layout, [purge_row])
    assert first > 1


def test_switching_the_listener_off_is_recorded_by_the_canary(layout: Layout) -> None:
    """The listener's file removed and Trino restarted without it (as an operator could): the receiver's
    canary query runs, its event never arrives, and the receiver records that in the trail."""
    import datetime as dt

    from santelake.render.trino import AUDIT_LISTENER_FILE
    from santelake.runtime import stack
    from santelake.runtime.services.trino import Trino

    trino = Trino(layout)
    switched_off = dt.datetime.now(dt.UTC)
    for spec in trino.processes():
        process.stop(spec)
    config = trino.etc / "config.properties"
    config.write_text("".join(line for line in config.read_text().splitlines(keepends=True)
                              if not line.startswith("event-listener.config-files=")))
    (trino.etc / AUDIT_LISTENER_FILE).unlink()
    try:
        trino.clear_stale_launcher_pid()
        for spec in trino.processes():
            process.start(spec)
        deadline = time.monotonic() + 300
        found = None
        while found is None and time.monotonic() < deadline:
            time.sleep(5)
            with _as_superuser(layout) as cur:
                cur.execute("SELECT subject, payload FROM audit.records WHERE kind = 'audit.listener_silent' "
                            "AND recorded_at > %s", (switched_off,))
                found = cur.fetchone()
        assert found is not None, "no record says the listener went silent within 5 minutes"
        assert "listener is off" in json.loads(found[1])["what"]
    finally:
        for spec in trino.processes():
            process.stop(spec)
        stack.up(layout, only=("trino",))  # every etc file written again, the listener's included
        query.run(layout, dev_token(layout, "alice"), "SELECT 1")  # waits out NO_NODES_AVAILABLE for the next test
    with _as_superuser(layout) as cur:
        cur.execute("SELECT count(*) FROM audit.records WHERE kind = 'trino.query_completed' AND subject = %s",
                    (found[0],))
        assert cur.fetchone()[0] == 0, "the canary's own event arrived after all"


def test_an_anchor_cannot_be_deleted_not_even_by_root(layout: Layout) -> None:
    from minio.error import S3Error

    from santelake.audit.anchors import S3Anchors, anchor_key
    from santelake.audit.config import AUDIT_BUCKET
    from santelake.audit.store import DATABASE
    from santelake.runtime.services.minio import Minio

    _run(layout, "alice", "SELECT 'to anchor'")
    root = Minio(layout).client()
    deadline = time.monotonic() + 120
    while not (anchors := list(S3Anchors(root, AUDIT_BUCKET, DATABASE))) and time.monotonic() < deadline:
        time.sleep(5)  # the receiver anchors every minute
    assert anchors, "no anchor written within 2 minutes"
    key = anchor_key(anchors[-1], DATABASE)
    root.remove_object(AUDIT_BUCKET, key)  # a delete marker: hides it from a plain listing only
    assert anchors[-1] in list(S3Anchors(root, AUDIT_BUCKET, DATABASE))
    version = next(o for o in root.list_objects(AUDIT_BUCKET, prefix=key, include_version=True)
                   if not o.is_delete_marker)
    with pytest.raises(S3Error, match="WORM protected"):
        root.remove_object(AUDIT_BUCKET, key, version_id=version.version_id)
