"""Lint catches each kind of fault, naming the file and line; the repository's policies are clean."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from santelake.policy.errors import FaultKind, Severity
from santelake.policy.lint import lint_directory

DAY = dt.date(2026, 6, 1)
CARDIO = "projects/cardio_outcomes.yaml"


def _faults(policies: Path, schemas: Path) -> list[tuple[str, int, FaultKind, Severity]]:
    _, faults = lint_directory(policies, schemas, DAY)
    return [(str(f.path).removeprefix("policies/"), f.line, f.kind, f.severity) for f in faults]


def _edit(policies: Path, name: str, old: str, new: str) -> None:
    path = policies / name
    text = path.read_text()
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1))


def _line(policies: Path, name: str, text: str) -> int:
    return next(i for i, line in enumerate((policies / name).read_text().splitlines(), 1) if text in line)


def test_the_repository_policies_are_clean(policies: Path, schemas: Path) -> None:
    assert _faults(policies, schemas) == []


CASES = [
    # (file, old text, new text, line holding this text after the edit, kind)
    (CARDIO, "title: Cardio", "titel: Cardio", "titel:", FaultKind.SCHEMA),
    (CARDIO, "end: 2028-12-31\n", "", "title:", FaultKind.SCHEMA),  # no end date
    (CARDIO, "legal_basis:\n  reference_methodology: MR-004\n", "", "title:", FaultKind.SCHEMA),
    (CARDIO, "start: 2026-01-01", "start: 2026-13-01", "start:", FaultKind.SCHEMA),
    (CARDIO, "members: [alice]", "members: [alice, alice]", "members:", FaultKind.SCHEMA),
    (CARDIO, "members: [alice]", "members: [alice", "start:", FaultKind.SYNTAX),
    (CARDIO, "table: snds.beneficiaries", "table: snds.benefits", "snds.benefits", FaultKind.UNKNOWN_TABLE),
    (CARDIO, "columns: [person_id, birth_month", "columns: [person_id, birth_day", "birth_day",
     FaultKind.UNKNOWN_COLUMN),
    (CARDIO, "      - column: residence_department", "      - column: residence", "column: residence",
     FaultKind.UNKNOWN_COLUMN),
    (CARDIO, "members: [alice]", "members: [alice, mallory]", "mallory", FaultKind.UNKNOWN_PERSON),
    (CARDIO, "responsible: alice", "responsible: zoe", "responsible:", FaultKind.UNKNOWN_PERSON),
    (CARDIO, "      person_id: project_pseudonym\n      birth_month: year", "      birth_month: year",
     "- table: snds.beneficiaries", FaultKind.DIRECT_IDENTIFIER),
    (CARDIO, "MR-004", "MR-099", "reference_methodology", FaultKind.LEGAL_BASIS),
    (CARDIO, "end: 2028-12-31", "end: 2025-12-31", "title:", FaultKind.DATES),
    (CARDIO, "table: snds.beneficiaries", "table: ops.quarantine", "ops.quarantine", FaultKind.STAFF_ONLY),
    (CARDIO, "birth_month: year", "sex_code: year", "sex_code: year", FaultKind.MASK),
    (CARDIO, "birth_month: year", "death_month: year", "death_month: year", FaultKind.MASK),
    (CARDIO, '["75", "77"', '[75, "77"', "in: [75", FaultKind.ROW_FILTER),
    (CARDIO, "between: [2019-01-01, 2024-12-31]", "between: [2024-12-31, 2019-01-01]", "between:",
     FaultKind.ROW_FILTER),
    (CARDIO, "  - table: snds.hospital_stays", "  - table: snds.beneficiaries", "- table: snds.beneficiaries",
     FaultKind.CONFLICT),
    ("staff.yaml", "members: [chloe]", "members: [chloe, dana]", "members: [chloe", FaultKind.CONFLICT),
]


@pytest.mark.parametrize(("name", "old", "new", "at", "kind"), CASES, ids=[f"{c[4]}-{i}" for i, c in enumerate(CASES)])
def test_each_fault_kind_names_file_and_line(policies: Path, schemas: Path, name: str, old: str, new: str,
                                             at: str, kind: FaultKind) -> None:
    _edit(policies, name, old, new)
    faults = _faults(policies, schemas)
    lines = [line for i, line in enumerate((policies / name).read_text().splitlines(), 1) if at in line]
    assert lines, at
    expected_lines = {i for i, line in enumerate((policies / name).read_text().splitlines(), 1) if at in line}
    assert any(f == name and line in expected_lines and k is kind for f, line, k, _ in faults), faults


def test_a_member_of_two_projects_on_one_table_is_a_conflict(policies: Path, schemas: Path) -> None:
    _edit(policies, "projects/antidiabetics_2023.yaml", "members: [bob]", "members: [bob, alice]")
    _edit(policies, "projects/antidiabetics_2023.yaml", "end: 2024-06-30", "end: 2027-06-30")
    faults = _faults(policies, schemas)
    line = _line(policies, CARDIO, "- table: snds.beneficiaries")
    assert (CARDIO, line, FaultKind.CONFLICT, Severity.ERROR) in faults


def test_a_grant_above_the_legal_basis_ceiling(policies: Path, schemas: Path) -> None:
    _edit(policies, "platform.yaml", "MR-004: sensitive", "MR-004: quasi_identifier")
    line = _line(policies, CARDIO, "- table: snds.hospital_stays")
    assert (CARDIO, line, FaultKind.CEILING, Severity.ERROR) in _faults(policies, schemas)


def test_a_data_engineer_in_a_project_is_shadowed(policies: Path, schemas: Path) -> None:
    _edit(policies, CARDIO, "members: [alice]", "members: [alice, dana]")
    line = _line(policies, CARDIO, "members:")
    assert (CARDIO, line, FaultKind.SHADOWED, Severity.WARNING) in _faults(policies, schemas)


def test_a_shared_table_granted_to_a_project_is_shadowed(policies: Path, schemas: Path) -> None:
    _edit(policies, "platform.yaml", "table: ref.icd10_chapters", "table: snds.hospital_stays")
    faults = _faults(policies, schemas)
    assert any(k is FaultKind.SHADOWED for _, _, k, _ in faults)
    assert any(f == "platform.yaml" and k is FaultKind.CEILING for f, _, k, _ in faults)


def test_an_undeclared_shared_table_is_reported(policies: Path, schemas: Path) -> None:
    _edit(policies, "platform.yaml", "table: ref.icd10_chapters", "table: ref.no_such_table")
    assert any(f == "platform.yaml" and k is FaultKind.UNKNOWN_TABLE for f, _, k, _ in _faults(policies, schemas))


def test_a_missing_file_and_a_badly_named_project_are_reported(policies: Path, schemas: Path) -> None:
    (policies / "people.yaml").unlink()
    (policies / "projects" / "cardio_outcomes.yaml").rename(policies / "projects" / "Cardio-Outcomes.yaml")
    faults = _faults(policies, schemas)
    assert ("people.yaml", 0, FaultKind.SCHEMA, Severity.ERROR) in faults
    assert any(f == "projects/Cardio-Outcomes.yaml" for f, _, _, _ in faults)


def test_faults_print_as_file_line_column(policies: Path, schemas: Path) -> None:
    _edit(policies, CARDIO, "MR-004", "MR-099")
    _, faults = lint_directory(policies, schemas, DAY)
    text = str(faults[0])
    assert text.startswith(f"{policies.parent.name}/") is False  # relative to the policies' parent
    assert "projects/cardio_outcomes.yaml:" in text and "[legal-basis]" in text and "MR-099" in text
