import json

from santelake.policy.baseline import trino_group_file, trino_rules, trino_rules_json

# Every section of Trino's file-based access control: a missing one means "allow all".
SECTIONS = {"catalogs", "schemas", "tables", "functions", "procedures", "queries", "system_information",
            "system_session_properties", "catalog_session_properties", "impersonation", "authorization"}


def test_every_section_is_present_so_nothing_defaults_to_allow() -> None:
    assert set(trino_rules()) == SECTIONS


def test_no_rule_grants_everyone_data() -> None:
    rules = trino_rules()
    for section in ("catalogs", "schemas", "tables", "functions", "procedures"):
        for rule in rules[section]:  # type: ignore[attr-defined]
            assert "group" in rule or "user" in rule, f"{section} rule {rule} applies to everyone"


def test_researchers_cannot_reach_metadata_tables() -> None:
    tables = trino_rules()["tables"]
    researcher = next(r for r in tables if r.get("group") == "researchers")  # type: ignore[attr-defined]
    assert researcher["table"] == "[^$]*"
    assert researcher["privileges"] == ["SELECT"]


def test_output_is_deterministic_json() -> None:
    assert trino_rules_json() == trino_rules_json()
    json.loads(trino_rules_json())


def test_group_file_format() -> None:
    assert trino_group_file({"b": ["y", "x", "x"], "a": ["z"], "empty": []}) == "a:z\nb:x,y\n"
