"""The chart's compiled policy depends on the commit, not on the day the check runs.

Projects are active between their start and end dates, so the policy is compiled as on a day,
recorded in contract.json; the check compiles for that day. ``policies/`` holds a project that
ended on 2024-06-30 and one running 2026-01-01..2028-12-31, which these days straddle.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from santelake.render import helm as chart
from tests.unit.helm.conftest import Rendered

BEFORE_CARDIO = dt.date(2025, 6, 1)  # antidiabetics ended, cardio_outcomes not yet started
DURING_CARDIO = dt.date(2026, 6, 1)
LATER_IN_CARDIO = dt.date(2027, 6, 1)
AFTER_ALL = dt.date(2029, 6, 1)


@pytest.fixture
def chart_copy(tmp_path: Path) -> Path:
    target = tmp_path / "chart"
    shutil.copytree(chart.CHART_DIR / chart.GENERATED_DIR, target / chart.GENERATED_DIR)
    return target


def test_the_policy_differs_across_a_project_boundary() -> None:
    # Otherwise the tests below prove nothing.
    assert chart.compiled_policy(DURING_CARDIO).group_file != chart.compiled_policy(AFTER_ALL).group_file


def test_the_committed_render_records_its_day() -> None:
    assert chart.recorded_policy_day(chart.CHART_DIR) is not None


def test_check_uses_the_recorded_day_whatever_today_is(chart_copy: Path) -> None:
    chart.write_generated(chart_copy, DURING_CARDIO)
    assert chart.recorded_policy_day(chart_copy) == DURING_CARDIO
    assert chart.stale_files(chart_copy) == []
    # Judged as on a later day, the project's end shows: re-render.
    assert chart.stale_files(chart_copy, today=AFTER_ALL) == ["contract.json", "policy/groups.txt",
                                                             "policy/rules.json"]


def test_render_keeps_the_recorded_day_while_the_policy_holds(chart_copy: Path) -> None:
    chart.write_generated(chart_copy, DURING_CARDIO)
    assert chart.render_day(chart_copy, LATER_IN_CARDIO) == DURING_CARDIO
    assert chart.stale_files(chart_copy, today=LATER_IN_CARDIO) == []
    assert chart.render_day(chart_copy, AFTER_ALL) == AFTER_ALL
    chart.write_generated(chart_copy, BEFORE_CARDIO)
    assert chart.render_day(chart_copy, DURING_CARDIO) == DURING_CARDIO


def test_policy_configmap_names_its_day(render: Callable[[str], Rendered]) -> None:
    config_map = render("minimal").named("ConfigMap", "-policy")
    recorded = chart.recorded_policy_day(chart.CHART_DIR)
    assert recorded is not None
    assert config_map["metadata"]["annotations"]["santelake.io/policy-compiled-for"] == recorded.isoformat()
