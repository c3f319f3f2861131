"""What the receiver makes of what Trino's http listener posts."""

from __future__ import annotations

from pathlib import Path

import pytest

from santelake.audit.receiver import PolicyIdentity, trino_entry

POLICY = {"rules_sha256": "ab" * 32, "revision": "deadbeef"}
CREATED = {"createTime": "2026-12-02T08:00:00Z", "context": {"user": "alice"},
           "metadata": {"queryId": "20261202_080000_00000_abcde", "queryState": "QUEUED", "query": "SELECT 1"}}
COMPLETED = CREATED | {"statistics": {"outputRows": 1}, "ioMetadata": {"inputs": []},
                       "endTime": "2026-12-02T08:00:01Z"}


def test_created_and_completed_events_are_told_apart_and_kept_whole() -> None:
    created, completed = trino_entry(CREATED, POLICY), trino_entry(COMPLETED, POLICY)
    assert (created.kind, completed.kind) == ("trino.query_created", "trino.query_completed")
    assert (completed.actor, completed.subject) == ("alice", "20261202_080000_00000_abcde")
    assert completed.payload == {"event": COMPLETED, "policy": POLICY}


@pytest.mark.parametrize("body", [[], {"context": {}}, {"metadata": {"queryId": ""}}, {"metadata": []}])
def test_anything_but_a_query_event_is_refused(body: object) -> None:
    with pytest.raises(ValueError, match="not a Trino query event"):
        trino_entry(body, POLICY)


def test_the_policy_identity_follows_the_rules_file(tmp_path: Path) -> None:
    rules, identity = tmp_path / "rules.json", tmp_path / "identity.json"
    policy = PolicyIdentity(rules, identity)
    assert policy.current() == {"rules_sha256": "", "revision": ""}
    rules.write_text("{}")
    identity.write_text('{"revision": "abc"}')
    first = policy.current()
    assert first["revision"] == "abc" and len(first["rules_sha256"]) == 64
    rules.write_text('{"catalogs": []}')
    assert policy.current()["rules_sha256"] != first["rules_sha256"]


def test_the_engines_detail_is_left_out_and_who_read_what_kept() -> None:
    event = COMPLETED | {"metadata": CREATED["metadata"] | {"plan": "x" * 1000, "payload": "{}"},
                         "statistics": {"outputRows": 1, "operatorSummaries": [{"x": 1}]}}
    kept = trino_entry(event, POLICY).payload["event"]
    assert "plan" not in kept["metadata"] and "payload" not in kept["metadata"]
    assert kept["metadata"]["query"] == "SELECT 1" and kept["statistics"] == {"outputRows": 1}
