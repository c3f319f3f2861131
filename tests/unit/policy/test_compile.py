"""Compile output: deterministic, deny by default in every section, expired projects gone."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest

from santelake.access.enforce import RULE_SECTIONS, check_closed
from santelake.errors import ConfigError
from santelake.policy.build import build
from santelake.policy.diff import diff_revisions
from santelake.policy.explain import user_access
from santelake.policy.report import report
from santelake.schema import load_schemas

DAY = dt.date(2026, 6, 1)
SECTIONS = {"catalogs", "schemas", "tables", "functions", "procedures", "queries", "system_information",
            "system_session_properties", "catalog_session_properties", "impersonation", "authorization"}


def test_rules_missing_a_section_are_never_applied(policies: Path, schemas: Path) -> None:
    """Trino allows whatever a rules file has no section for: apply refuses such rules first."""
    check_closed(build(policies, schemas, DAY).compiled.rules_json)
    assert set(RULE_SECTIONS) == SECTIONS
    with pytest.raises(ConfigError, match=r"no catalogs, schemas, tables,.* section"):
        check_closed("{}")
    partial = {name: [] for name in SECTIONS - {"tables"}}
    with pytest.raises(ConfigError, match="no tables section: Trino would allow everything"):
        check_closed(json.dumps(partial))
    with pytest.raises(ConfigError, match="not JSON"):
        check_closed("{")


def test_output_is_byte_identical_across_runs(policies: Path, schemas: Path) -> None:
    first, second = build(policies, schemas, DAY).compiled, build(policies, schemas, DAY).compiled
    assert first.rules_json == second.rules_json and first.group_file == second.group_file
    json.loads(first.rules_json)


def test_every_section_is_written_so_nothing_defaults_to_allow(policies: Path, schemas: Path) -> None:
    rules = build(policies, schemas, DAY).compiled.rules
    assert set(rules) == SECTIONS
    assert rules["impersonation"] == [] and rules["authorization"] == []
    for section in ("schemas", "functions", "procedures", "system_session_properties", "catalog_session_properties"):
        assert all("group" in r or r.get("owner") is False for r in rules[section]), section


def test_system_catalog_and_metadata_tables_are_closed(policies: Path, schemas: Path) -> None:
    rules = build(policies, schemas, DAY).compiled.rules
    assert rules["catalogs"][-1] == {"catalog": "system", "allow": "none"}
    tables = rules["tables"]
    deny = tables.index({"catalog": "iceberg", "table": r".*\$.*", "privileges": []})
    projects = [i for i, r in enumerate(tables) if r.get("group", "").startswith("project_")]
    assert projects and deny < min(projects)
    engineers = tables.index(next(r for r in tables if r.get("group") == "data_engineers" and "schema" not in r))
    assert engineers < deny


def test_project_rules_hide_mask_and_filter(policies: Path, schemas: Path) -> None:
    rules = build(policies, schemas, DAY).compiled.rules["tables"]
    rule = next(r for r in rules if r.get("group") == "project_cardio_outcomes" and r["table"] == "beneficiaries")
    columns = {c["name"]: c for c in rule["columns"]}
    assert columns["death_month"] == {"name": "death_month", "allow": False}
    assert columns["birth_month"]["mask"] == "date_trunc('year', \"birth_month\")"
    assert "santelake-project:cardio_outcomes:" in columns["person_id"]["mask"]
    assert rule["filter"].startswith('"residence_department" IN (\'75\'')
    assert rule["privileges"] == ["SELECT"]


def test_an_ended_project_compiles_to_nothing(policies: Path, schemas: Path) -> None:
    compiled = build(policies, schemas, DAY).compiled
    assert "project_antidiabetics_2023" not in compiled.rules_json
    assert "project_antidiabetics_2023" not in compiled.group_file
    assert "project_antidiabetics_2023" in compiled.groups  # kept, empty, in Keycloak
    during = build(policies, schemas, dt.date(2024, 1, 15)).compiled
    assert "project_antidiabetics_2023:bob" in during.group_file


def test_explain_and_report(policies: Path, schemas: Path) -> None:
    built = build(policies, schemas, DAY)
    declared = {t.full_name: t for t in load_schemas(schemas)}
    alice = {a.table: a for a in user_access(built.policies, declared, DAY, "alice")}
    assert set(alice) == {"ref.icd10_chapters", "snds.beneficiaries", "snds.hospital_stays"}
    assert ("birth_month", "year") in alice["snds.beneficiaries"].columns
    assert alice["snds.beneficiaries"].until == dt.date(2028, 12, 31)
    assert user_access(built.policies, declared, DAY, "bob") == []
    text = report(built.policies, declared, DAY)
    assert "| antidiabetics_2023 | ended |" in text and "| cardio_outcomes | active |" in text


def test_diff_between_git_revisions(policies: Path, schemas: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "iceberg_schemas").mkdir(parents=True)
    subprocess.run(["cp", "-r", str(policies), str(repo / "policies")], check=True)
    subprocess.run(["cp", "-r", *map(str, schemas.iterdir()), str(repo / "iceberg_schemas")], check=True)

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                       capture_output=True)

    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "one")
    project = repo / "policies" / "projects" / "antidiabetics_2023.yaml"
    project.write_text(project.read_text().replace("end: 2024-06-30", "end: 2027-06-30"))
    git("commit", "-qam", "two")
    lines = diff_revisions(repo, "HEAD~1", "HEAD", "policies", "iceberg_schemas", DAY)
    assert any(line.startswith("+ bob gains snds.pharmacy_dispensations") for line in lines)
    assert any(line.startswith("+ bob gains ref.icd10_chapters") for line in lines)
    assert not any("alice" in line for line in lines)
