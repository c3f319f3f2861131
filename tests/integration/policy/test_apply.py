"""`policy apply` on the running stack: effect within 10 s, no restart; Keycloak synced idempotently."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import trino.exceptions

from santelake.access import query
from santelake.access.enforce import apply
from santelake.access.token import dev_token
from santelake.locations import policies_dir
from santelake.policy.build import Build, build
from santelake.policy.keycloak import sync_groups
from santelake.runtime.layout import Layout
from santelake.runtime.platform import platform_settings
from santelake.runtime.services.keycloak import Keycloak
from tests.integration.policy.conftest import EFFECT_TIMEOUT_S, eventually

pytestmark = pytest.mark.integration

PROBE = "SELECT count(*) FROM iceberg.snds.pharmacy_dispensations"


def _can_read(layout: Layout, token: str) -> bool:
    try:
        query.run(layout, token, PROBE)
    except trino.exceptions.TrinoUserError as exc:
        assert "Access Denied" in str(exc)
        return False
    return True


def test_reopening_and_closing_a_project_takes_effect_within_10_s(layout: Layout, policy: Build,
                                                                  tmp_path: Path) -> None:
    extended = tmp_path / "policies"
    shutil.copytree(policies_dir(), extended)
    project = extended / "projects" / "antidiabetics_2023.yaml"
    project.write_text(project.read_text().replace("end: 2024-06-30", "end: 2099-12-31"))
    token = dev_token(layout, "bob")
    assert not _can_read(layout, token)
    try:
        apply(platform_settings(layout), build(extended).compiled)
        opened = eventually(lambda: _can_read(layout, token))
    finally:
        apply(platform_settings(layout), policy.compiled)
    closed = eventually(lambda: not _can_read(layout, token))
    print(f"\npolicy apply to effect: access granted after {opened:.1f}s, withdrawn after {closed:.1f}s")
    assert opened < EFFECT_TIMEOUT_S and closed < EFFECT_TIMEOUT_S


def test_keycloak_groups_match_the_policies_and_sync_is_idempotent(layout: Layout, policy: Build) -> None:
    admin = Keycloak(layout).admin()
    assert sync_groups(admin, policy.compiled) == []
    groups = {g["name"]: g["id"] for g in admin.get_groups()}
    for group in policy.compiled.groups:
        members = {m["username"] for m in admin.get_group_members(groups[group])}
        assert members == set(policy.compiled.members.get(group, ()))
    assert policy.compiled.members["project_cardio_outcomes"] == ("alice",)
    assert "project_antidiabetics_2023" not in policy.compiled.members


def test_apply_twice_changes_nothing(layout: Layout, policy: Build) -> None:
    assert apply(platform_settings(layout), policy.compiled) == []


def test_the_dev_users_keep_working(sql: Any, policy: Build) -> None:
    assert sql("alice", "SHOW CATALOGS") == [("iceberg",)]
    assert sql("dana", "SELECT count(*) FROM iceberg.ops.quarantine")[0][0] >= 0
