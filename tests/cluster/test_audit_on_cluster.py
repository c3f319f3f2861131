"""The chart's audit trail: the receiver runs in the release, every query reaches the hash chain, the
loads and logins too, the chain verifies, and only compliance officers read it through Trino."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from tests.cluster.conftest import NAME, Cluster, Loaded, ca_file, query

pytestmark = pytest.mark.cluster

# How long an event may take to be sealed: at once, unless the receiver was still waiting for the
# bootstrap Job's database (Trino's listener retries for about 25 minutes).
SEALED_WITHIN_SECONDS = 300


def test_every_query_is_recorded_in_a_chain_that_verifies_and_only_compliance_reads(
        release: Cluster, loaded: Loaded, tmp_path: Path) -> None:
    ca = ca_file(release, tmp_path)
    marker = f"audit-e2e-{time.time_ns()}"
    [[stays]] = query(release, "alice", f"SELECT count(*) FROM iceberg.snds.hospital_stays WHERE '{marker}' <> ''", ca)
    assert stays > 0
    # A researcher and a data engineer may not read the trail: refused, and the refusal is recorded too.
    for user in ("alice", "dana"):
        with pytest.raises(Exception, match="Access Denied") as refused:
            query(release, user, f"SELECT count(*) FROM audit.audit.records WHERE '{marker}' <> ''", ca)
        print(f"\n[cluster] {user} reading the trail: {str(refused.value)[:160]}")

    # Compliance reads alice's query through Trino's audit catalog: who, what, how many rows, which rules.
    sql = (f"SELECT user_name, state, output_rows, error_code, policy_rules_sha256 FROM audit.audit.queries "
           f"WHERE completed AND query LIKE '%{marker}%' ORDER BY user_name, state")
    started = time.monotonic()
    while True:
        # Compliance's own queries hold the marker too: theirs are left out.
        marked = [r for r in query(release, "chloe", sql, ca) if r[0] != "chloe"]
        if len(marked) >= 3 or time.monotonic() - started > SEALED_WITHIN_SECONDS:
            break
        time.sleep(10)
    print(f"[cluster] the trail's records of the marked queries after {time.monotonic() - started:.0f} s: {marked}")
    rules = release.json("get", "configmap", f"{NAME}-policy")["data"]["rules.json"]
    in_force = hashlib.sha256(rules.encode()).hexdigest()
    assert sorted(marked, key=str) == sorted([
        ["alice", "FINISHED", 1, None, in_force],
        ["alice", "FAILED", 0, "PERMISSION_DENIED", in_force],
        ["dana", "FAILED", 0, "PERMISSION_DENIED", in_force],
    ], key=str), marked

    # The loads the scheduler ran and the logins Keycloak saw are in the same trail.
    [[loads, logins]] = query(release, "chloe", "SELECT count_if(kind = 'santelake.load'), "
                                                "count_if(kind = 'keycloak.event') FROM audit.audit.records", ca)
    print(f"[cluster] {loads} load records, {logins} Keycloak events")
    assert loads >= len(loaded.keys) and logins > 0

    # The chain verifies in the receiver's pod: every record linked, the anchors reached, no gap.
    proof = release.run("exec", f"deploy/{NAME}-audit", "-c", "receiver", "--", "santelake", "audit", "verify",
                        timeout=600, check=False)
    print(f"[cluster] {proof.stdout.strip()} {proof.stderr.strip()}")
    assert proof.returncode == 0, proof.stderr
    assert "audit trail proven" in proof.stdout and " 0 anchors" not in proof.stdout


def test_the_retention_job_purges_old_records_and_the_chain_still_proves(release: Cluster, loaded: Loaded,
                                                                          tmp_path: Path) -> None:
    """The chart's retention CronJob, run now with a cut a minute ago instead of its three years: the
    install's, the loads' and the test above's records go, and the chain still proves."""
    import datetime as dt
    import json

    cronjob = release.json("get", "cronjob", f"{NAME}-audit-retention")
    spec = cronjob["spec"]["jobTemplate"]["spec"]
    cut = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    spec["template"]["spec"]["containers"][0]["command"] = ["santelake", "audit", "purge", "--before", cut]
    name = f"audit-retention-now-{time.time_ns() % 10**6}"
    job = {"apiVersion": "batch/v1", "kind": "Job", "spec": spec,
           "metadata": {"name": name, "labels": cronjob["metadata"]["labels"]}}
    manifest = tmp_path / f"{name}.json"
    manifest.write_text(json.dumps(job))
    release.run("apply", "-f", str(manifest))
    release.run("wait", "--for=condition=complete", f"job/{name}", "--timeout=300s", timeout=330)
    purged = release.run("logs", f"job/{name}").stdout.strip()
    print(f"\n[cluster] {purged}")
    assert purged.startswith("purged "), purged
    proof = release.run("exec", f"deploy/{NAME}-audit", "-c", "receiver", "--", "santelake", "audit", "verify",
                        timeout=600, check=False)
    print(f"[cluster] {proof.stdout.strip()} {proof.stderr.strip()}")
    assert proof.returncode == 0 and "audit trail proven" in proof.stdout, proof.stderr
