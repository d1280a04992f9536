"""The report's panels come from the dashboard JSON: a panel added there is drawn, and its
queries are filled for one user the way the report needs them."""

from __future__ import annotations

import copy
import json

import pytest

from modelmon.ops.errors import OpsError
from modelmon.ops.prometheus import Scope
from modelmon.ops.report import dashboard_panels, fill, legend, load_dashboard


def test_the_packaged_dashboard_is_the_one_the_chart_ships(repo_root) -> None:
    [shipped] = (repo_root / "charts" / "model-monitoring" / "files" / "dashboards").glob("*.json")
    assert load_dashboard() == json.loads(shipped.read_text())


def test_a_panel_added_to_the_dashboard_appears_in_the_report() -> None:
    dashboard = copy.deepcopy(load_dashboard())
    before = dashboard_panels(dashboard)
    dashboard["panels"].append(
        {
            "id": 99,
            "type": "timeseries",
            "title": "Feedback per second",
            "targets": [{"expr": 'sum(rate(model_feedback_total{user_id=~"$user_id"}[1m]))'}],
        }
    )
    after = dashboard_panels(dashboard)
    assert len(after) == len(before) + 1
    added = after[-1]
    assert (added.title, added.plotted, added.file) == (
        "Feedback per second",
        True,
        "panel-99-feedback-per-second.png",
    )
    assert all(panel.targets for panel in after), "panels without queries are left out"


def test_every_shipped_query_can_be_filled_for_a_user() -> None:
    scope = Scope("user07", "kubeflow-user07")
    for panel in dashboard_panels():
        for target in panel.targets:
            filled = fill(target.expr, scope, "1m", 3600)
            assert "$" not in filled
            assert 'user_id="user07",namespace="kubeflow-user07"' in filled or (
                "ALERTS" in filled and 'user_id="user07"' in filled
            ), filled


def test_a_variable_the_report_cannot_fill_is_a_clear_error() -> None:
    with pytest.raises(OpsError, match=r"cannot fill \$cluster"):
        fill('up{cluster="$cluster"}', Scope("u"), "1m", 60)


def test_legends_are_grafanas_legend_format() -> None:
    labels = {"variant": "canary", "model_version": "2.0.0"}
    assert legend("{{variant}} v{{ model_version }}", labels) == "canary v2.0.0"
    assert legend("", labels) == "model_version=2.0.0, variant=canary"
    assert legend("", {}) == "value"
