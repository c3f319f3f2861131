"""The Great Expectations audit: one Data Docs site per run, local-only, run again and again in one process."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from santelake.ingest import runner
from santelake.ingest.expectations import LOCAL_ONLY, PLAIN_STYLE, audit, seal_data_docs
from santelake.ingest.rules import table_rules
from santelake.schema import to_arrow_schema


def _empty(name: str) -> pa.Table:
    return pa.Table.from_pylist([], schema=to_arrow_schema(runner.schemas()[name]))


def test_the_same_table_is_audited_twice_in_one_process(tmp_path: Path) -> None:
    results = []
    for run, name in enumerate(("snds.outpatient_claims", "snds.hospital_stays", "snds.outpatient_claims")):
        declared = runner.schemas()[name]
        results.append(audit(tmp_path / f"run{run}", declared, table_rules(declared, None), _empty(name)))
    assert [r.success for r in results] == [True, True, True]
    # Each names the page of its validation result, in its own run's folder.
    for run, result in enumerate(results):
        page = Path(result.data_docs)
        assert page.is_file() and page.relative_to(tmp_path / f"run{run}").parts[0] == "validations"
    # Each run's site shows that run only: its index does not grow with the runs before it,
    # and lists its pages in plain links (GX's own list needs scripts no longer loaded).
    third = (tmp_path / "run2" / "index.html").read_text(encoding="utf-8")
    assert set(re.findall(r"validations/[^'\"]+\.html", third)) == \
        {Path(results[2].data_docs).relative_to(tmp_path / "run2").as_posix()}
    assert f'<a href="{Path(results[2].data_docs).relative_to(tmp_path / "run2").as_posix()}">' in third
    validation = json.loads((tmp_path / "run2" / "validation.json").read_text())
    assert validation["success"] is True and validation["results"]


def test_a_failing_expectation_is_named(tmp_path: Path) -> None:
    declared = runner.schemas()["snds.outpatient_claims"]
    rows = _empty("snds.outpatient_claims").drop_columns(["claim_id"])
    result = audit(tmp_path / "run", declared, table_rules(declared, None), rows)
    assert not result.success
    assert any("columns" in failed.lower() for failed in result.failed), result.failed
    assert json.loads((tmp_path / "run" / "validation.json").read_text())["success"] is False


def test_a_run_never_writes_into_another_runs_docs(tmp_path: Path) -> None:
    declared = runner.schemas()["snds.outpatient_claims"]
    audit(tmp_path / "run", declared, table_rules(declared, None), _empty("snds.outpatient_claims"))
    with pytest.raises(FileExistsError, match="run"):
        audit(tmp_path / "run", declared, table_rules(declared, None), _empty("snds.outpatient_claims"))


def test_the_data_docs_fetch_nothing_remote(tmp_path: Path) -> None:
    declared = runner.schemas()["snds.outpatient_claims"]
    result = audit(tmp_path / "run", declared, table_rules(declared, None), _empty("snds.outpatient_claims"))
    pages = list((tmp_path / "run").rglob("*.html"))
    assert len(pages) >= 3, pages  # the index, the suite, the validation
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"<(script|link)\b[^>]*(src|href)=[\"']?https?://", text, re.IGNORECASE), page
        head = re.search(r"<head\b[^>]*>", text, re.IGNORECASE)
        assert head is not None and text[head.end():].startswith(LOCAL_ONLY + PLAIN_STYLE), page
    # Only the static files a page uses are kept, not GX's 4 MB of images.
    static = [p for p in (tmp_path / "run" / "static").rglob("*") if p.is_file()]
    assert static and sum(p.stat().st_size for p in static) < 100_000
    for path in static:
        assert any(path.relative_to(tmp_path / "run").as_posix() in page.read_text() for page in pages), path
    assert Path(result.data_docs).is_file()


def test_sealing_refuses_a_page_without_a_head(tmp_path: Path) -> None:
    (tmp_path / "static").mkdir()
    (tmp_path / "page.html").write_text("<html><body>no head</body></html>")
    with pytest.raises(ValueError, match=r"page\.html.*<head>"):
        seal_data_docs(tmp_path)


def test_sealing_removes_remote_tags_and_unused_static_files(tmp_path: Path) -> None:
    (tmp_path / "static" / "images").mkdir(parents=True)
    (tmp_path / "static" / "images" / "used.png").write_bytes(b"1")
    (tmp_path / "static" / "images" / "unused.png").write_bytes(b"2")
    (tmp_path / "static" / "empty").mkdir()
    (tmp_path / "index.html").write_text(
        '<html><HEAD><script src="https://cdn.example/x.js"></script>'
        "<link rel='stylesheet' href='http://cdn.example/y.css'/>"
        '<link rel="icon" href="static/images/used.png"></HEAD>'
        '<body><a href="https://ok.example">a link</a></body></html>')
    seal_data_docs(tmp_path)
    text = (tmp_path / "index.html").read_text()
    assert "cdn.example" not in text
    assert '<a href="https://ok.example">' in text  # a link is followed only if clicked
    assert "<nav><h2>Pages of this run</h2><ul></ul></nav>" in text  # the index: no other page here
    assert text.startswith("<html><HEAD>" + LOCAL_ONLY)
    assert sorted(p.relative_to(tmp_path / "static").as_posix() for p in (tmp_path / "static").rglob("*")) == \
        ["images", "images/used.png"]


@pytest.mark.parametrize("care_date", [dt.date(1850, 1, 1), dt.date(2999, 12, 31), dt.date(1, 1, 1)])
def test_a_date_out_of_range_fails_the_audit_in_any_dtype(tmp_path: Path, care_date: dt.date) -> None:
    # Dates GX compares in one numpy operation (datetime64[ns]), and dates no nanosecond
    # stamp holds (year 2999, year 1), which it compares value by value: the same verdict.
    declared = runner.schemas()["snds.outpatient_claims"]
    row = {"claim_id": "c1", "person_id": "p" * 64, "care_date": dt.date(2024, 5, 1), "act_code": 1111,
           "prescriber_specialty": 1, "performer_specialty": 1, "amount_paid": Decimal("25.00"),
           "amount_reimbursed": Decimal("16.50")}
    rows = pa.Table.from_pylist([row, row | {"claim_id": "c2", "care_date": care_date}],
                                schema=to_arrow_schema(declared))
    result = audit(tmp_path / "run", declared, table_rules(declared, None), rows)
    assert not result.success
    assert result.failed == ("expect_column_values_to_be_between(care_date)",)


def test_an_amount_out_of_range_fails_the_audit(tmp_path: Path) -> None:
    declared = runner.schemas()["snds.outpatient_claims"]
    row = {"claim_id": "c1", "person_id": "p" * 64, "care_date": dt.date(2024, 5, 1), "act_code": 1111,
           "prescriber_specialty": 1, "performer_specialty": 1, "amount_paid": Decimal("25.00"),
           "amount_reimbursed": Decimal("16.50")}
    # A regularisation line may be negative, never beyond the range.
    rows = pa.Table.from_pylist([row, row | {"claim_id": "c2", "amount_paid": Decimal("-1000001.00"),
                                             "amount_reimbursed": Decimal("-2.00"), "corrected_claim_id": "c1"}],
                                schema=to_arrow_schema(declared))
    assert audit(tmp_path / "ok", declared, table_rules(declared, None), rows.slice(0, 1)).success
    result = audit(tmp_path / "run", declared, table_rules(declared, None), rows)
    assert result.failed == ("expect_column_values_to_be_between(amount_paid)",)


def test_integer_and_set_checks_keep_their_verdict(tmp_path: Path) -> None:
    # int32 columns are handed to GX as int64 (its vectorised path): the verdict is the same.
    declared = runner.schemas()["snds.beneficiaries"]
    row = {"person_id": "p" * 64, "birth_month": dt.date(1960, 3, 1), "sex_code": 1,
           "residence_department": "75", "twin_rank": 1, "death_month": None}
    rows = pa.Table.from_pylist([row, row | {"twin_rank": 12, "sex_code": 3}], schema=to_arrow_schema(declared))
    assert audit(tmp_path / "ok", declared, table_rules(declared, None), rows.slice(0, 1)).success
    result = audit(tmp_path / "run", declared, table_rules(declared, None), rows)
    assert sorted(result.failed) == ["expect_column_values_to_be_between(twin_rank)",
                                     "expect_column_values_to_be_in_set(sex_code)"]
