"""Anchors are named so that listing one trail's prefix reads them all, and trails never mix."""

from __future__ import annotations

import datetime as dt

from santelake.audit.anchors import anchor_key, parse_key
from santelake.audit.chain import Anchor

ANCHOR = Anchor(42, "ab" * 32, dt.datetime(2026, 12, 2, 8, 0, 1, 250, tzinfo=dt.UTC))


def test_a_key_gives_its_anchor_back() -> None:
    key = anchor_key(ANCHOR, "santelake_audit")
    assert key.startswith("anchors/santelake_audit/000000000000042_")
    assert parse_key(key, "santelake_audit") == ANCHOR


def test_another_trails_anchor_or_any_other_object_is_not_one() -> None:
    assert parse_key(anchor_key(ANCHOR, "santelake_audit_bench"), "santelake_audit") is None
    assert parse_key("anchors/santelake_audit/readme.txt", "santelake_audit") is None
    assert parse_key("anchors/000000000000042_" + "ab" * 32 + "_20261202T080001.000250Z", "santelake_audit") is None
