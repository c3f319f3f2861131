"""The Great Expectations audit runs again and again in one process (a DAG task loads many files)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from santelake.ingest import runner
from santelake.ingest.expectations import audit
from santelake.ingest.rules import table_rules
from santelake.schema import to_arrow_schema


def test_the_same_table_is_audited_twice_in_one_project(tmp_path: Path) -> None:
    results = []
    for name in ("snds.outpatient_claims", "snds.hospital_stays", "snds.outpatient_claims"):
        declared = runner.schemas()[name]
        empty = pa.Table.from_pylist([], schema=to_arrow_schema(declared))
        results.append(audit(tmp_path, declared, table_rules(declared, None), empty))
    assert [r.success for r in results] == [True, True, True]
    assert all(Path(r.data_docs).is_file() for r in results)


def test_a_failing_expectation_is_named(tmp_path: Path) -> None:
    declared = runner.schemas()["snds.outpatient_claims"]
    rows = pa.Table.from_pylist([], schema=to_arrow_schema(declared)).drop_columns(["claim_id"])
    result = audit(tmp_path, declared, table_rules(declared, None), rows)
    assert not result.success
    assert any("columns" in failed.lower() for failed in result.failed), result.failed
