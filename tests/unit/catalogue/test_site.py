"""The data catalogue built from the repository's schemas and policies: two views, nothing remote,
no personal data in the public one, and no build with an undescribed column."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import pytest

from santelake.catalogue.site import (
    PUBLIC,
    RESEARCHER,
    CatalogueError,
    Coverage,
    LoadReport,
    build,
    coding_systems,
    rounded,
)
from santelake.ingest import runner
from santelake.locations import policies_dir
from santelake.policy.loader import load_policies
from santelake.policy.model import PolicySet

TODAY = dt.date(2026, 12, 2)


@pytest.fixture(scope="module")
def policies() -> PolicySet:
    return load_policies(policies_dir())


def _texts(folder: Path) -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(folder.iterdir())}


def test_both_views_have_every_research_table_and_no_staff_table(tmp_path: Path, policies: PolicySet) -> None:
    for view in (PUBLIC, RESEARCHER):
        pages = build(tmp_path / view, runner.schemas(), policies, view, today=TODAY)
        names = {p.name for p in pages}
        assert "index.html" in names and "snds.hospital_stays.html" in names and "ref.icd10_chapters.html" in names
        assert not any(name.startswith("ops.") for name in names)


def test_no_page_fetches_anything(tmp_path: Path, policies: PolicySet) -> None:
    build(tmp_path, runner.schemas(), policies, RESEARCHER, today=TODAY)
    for name, text in _texts(tmp_path).items():
        # No stylesheet, script, image or font from elsewhere: every asset is inline.
        assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|url\(", text), name
        assert "http://" not in text and "https://" not in text, name


def test_the_public_view_names_no_person_and_shows_no_grant(tmp_path: Path, policies: PolicySet) -> None:
    build(tmp_path, runner.schemas(), policies, PUBLIC, today=TODAY)
    text = "\n".join(_texts(tmp_path).values())
    for person in policies.people:
        assert person.name not in text and f">{person.username}<" not in text
    assert "column granted" not in text and "SELECT" not in text
    # The projects are there, with their purpose, legal basis and organisation.
    stays = (tmp_path / "snds.hospital_stays.html").read_text(encoding="utf-8")
    project = next(p for p in policies.projects if any(d.table == "hospital_stays" for d in p.datasets))
    assert project.purpose in stays and "Legal basis" in stays and "Responsible organisation" in stays


def test_the_researcher_view_shows_each_projects_grant_and_queries(tmp_path: Path, policies: PolicySet) -> None:
    build(tmp_path, runner.schemas(), policies, RESEARCHER, today=TODAY)
    beneficiaries = (tmp_path / "snds.beneficiaries.html").read_text(encoding="utf-8")
    assert "column granted" in beneficiaries and "project_pseudonym" in beneficiaries
    assert "FROM iceberg.snds.beneficiaries" in beneficiaries
    # A grant by sensitivity class lists the columns it gives, not only those named.
    stays = (tmp_path / "snds.hospital_stays.html").read_text(encoding="utf-8")
    assert "<code>main_diagnosis</code>" in stays and "by class sensitive" in stays
    assert "SELECT year(admission_date)" in stays


def test_coverage_is_rounded_and_small_counts_are_not_shown(tmp_path: Path, policies: PolicySet) -> None:
    assert rounded(7) == "fewer than 10" and rounded(12) == "12" and rounded(12_345) == "about 12,000"
    assert rounded(None) == "not measured"
    coverage = {"snds.hospital_stays": Coverage(118_911, 7, dt.date(2019, 1, 3), dt.date(2024, 12, 30),
                                                dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC))}
    build(tmp_path, runner.schemas(), policies, PUBLIC, coverage, today=TODAY)
    stays = (tmp_path / "snds.hospital_stays.html").read_text(encoding="utf-8")
    assert "about 120,000" in stays and "fewer than 10" in stays and "118,911" not in stays
    assert "January 2019 to December 2024" in stays and "2026-12-01" in stays


def _loads() -> tuple[LoadReport, ...]:
    when = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
    return (LoadReport(when, "published", 12_345, 12_300, 45, 0, 3, 4, (("date_in_range", 3), ("known_person", 1))),
            LoadReport(when - dt.timedelta(days=1), "rejected", 0, 0, 0, 0, 0, 0, ()))


def test_each_table_page_links_the_quality_report_of_its_latest_loads(tmp_path: Path, policies: PolicySet) -> None:
    coverage = {"snds.hospital_stays": Coverage(118_911, 700, None, None, None, _loads())}
    for view in (PUBLIC, RESEARCHER):
        build(tmp_path / view, runner.schemas(), policies, view, coverage, today=TODAY)
        table = (tmp_path / view / "snds.hospital_stays.html").read_text(encoding="utf-8")
        assert '<a href="snds.hospital_stays.quality.html">Quality report of its latest loads</a>' in table
        report = (tmp_path / view / "snds.hospital_stays.quality.html").read_text(encoding="utf-8")
        rows = re.findall(r"<tr><td>(.*?)</tr>", report)
        assert len(rows) == 2 and "2026-12-01 09:30" in rows[0] and "rejected" in rows[1]
        assert '<a href="snds.hospital_stays.html">Back to the table</a>' in report
        # A table with no load yet says so; a build without the lake says it did not read them.
        assert "No load recorded yet" in (tmp_path / view / "snds.beneficiaries.quality.html").read_text()
        # A table the lake does not hold yet says so, not that the lake was not read.
        assert "Not loaded yet" in (tmp_path / view / "snds.beneficiaries.html").read_text()
    public = re.findall(r"<tr><td>(.*?)</tr>", (tmp_path / PUBLIC / "snds.hospital_stays.quality.html").read_text())
    researcher = re.findall(r"<tr><td>(.*?)</tr>",
                            (tmp_path / RESEARCHER / "snds.hospital_stays.quality.html").read_text())
    # Researchers see each count; the public sees them rounded, and none under 10.
    assert "12345" in researcher[0] and "date_in_range: 3, known_person: 1" in researcher[0]
    assert "about 12,000" in public[0] and "12345" not in public[0] and "date_in_range: fewer than 10" in public[0]
    build(tmp_path / "bare", runner.schemas(), policies, PUBLIC, today=TODAY)
    assert "built without the lake" in (tmp_path / "bare" / "snds.hospital_stays.quality.html").read_text()
    assert "Coverage not measured in this build (built without the lake)" in \
        (tmp_path / "bare" / "snds.hospital_stays.html").read_text()


def test_coding_systems_are_named_from_the_column_descriptions() -> None:
    names = [name for name, _ in coding_systems(runner.schemas()["snds.hospital_stays"])]
    assert "ICD-10" in names and "FINESS" in names


def test_a_column_without_a_description_fails_the_build_naming_its_file_and_line(
        tmp_path: Path, policies: PolicySet) -> None:
    schemas = runner.schemas()
    stays = schemas["snds.hospital_stays"]
    blank = dataclasses.replace(stays.columns[2], doc="  ")
    schemas["snds.hospital_stays"] = dataclasses.replace(stays, columns=(*stays.columns[:2], blank,
                                                                         *stays.columns[3:]))
    with pytest.raises(CatalogueError, match=rf"{re.escape(str(stays.path))}:{blank.line}: column "
                                             rf"snds.hospital_stays.{blank.name} has no doc"):
        build(tmp_path, schemas, policies, PUBLIC, today=TODAY)
    assert not (tmp_path / "index.html").exists()


def test_the_search_finds_what_a_person_types_in_a_real_browser(tmp_path: Path, policies: PolicySet) -> None:
    """Headless Chromium (infra/test installs it) runs the page's own search, as a reader's would."""
    import shutil
    import subprocess

    browser = shutil.which("chromium")
    assert browser, "chromium is missing: `bash infra/test` installs it (infra/bootstrap.sh dev --for-tests)"
    build(tmp_path, runner.schemas(), policies, PUBLIC, today=TODAY)

    def found(words: str) -> list[str]:
        dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                              f"{(tmp_path / 'index.html').as_uri()}?q={words}"],
                             capture_output=True, text=True, timeout=120, check=True).stdout
        results = dom.split('id="results"', 1)[1].split("</ul>", 1)[0]
        return re.findall(r'href="([^"]+)\.html"', results)

    assert found("icd-10%20diagnosis") == ["ref.icd10_chapters", "snds.hospital_stays"]
    assert found("atc") == ["snds.pharmacy_dispensations"]
    assert found("no-such-word") == []
