"""The researcher catalogue's example queries run, as written, for every member of every active project."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from santelake.catalogue.site import examples
from santelake.policy.build import Build
from santelake.schema import TableSchema

pytestmark = pytest.mark.integration


def test_every_example_query_runs_for_the_projects_members(sql: Any, policy: Build,
                                                           lake: dict[str, TableSchema]) -> None:
    today = dt.date.today()
    ran = 0
    for project in policy.policies.projects:
        if not project.start <= today <= project.end:
            continue  # an ended project's members have no access at all (test_bypasses)
        for dataset in project.datasets:
            for query in examples(dataset, lake[dataset.full_name]):
                for member in project.members:
                    rows = sql(member, query)
                    assert rows, f"{member}: no row from {query!r}"
                    ran += 1
    assert ran >= 5  # cardio_outcomes: two on beneficiaries, three on stays (one by admission year)
