"""Every query of every panel of the shipped dashboard, variables filled in as Grafana would,
returns data from the backend's Prometheus while traffic flows."""

from __future__ import annotations

import re

import requests

from backends import USER, Backend
from modelmon.ops.rows import Rows
from support import eventually
from traffic import Traffic, predictions_with_feedback

VARIABLES = {
    "$user_id": USER,
    "$__rate_interval": "30s",  # Grafana: at least four scrape intervals (2 s local, 5 s kind)
    "$__range": "5m",
}


def fill(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    leftover = re.findall(r"\$\{?\w+", expr)
    assert not leftover, f"unfilled variables {leftover} in {expr}"
    return expr


def test_every_panel_query_returns_data(backend: Backend) -> None:
    [dashboard] = backend.dashboards().values()
    queries = [
        (panel["title"], fill(target["expr"]))
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    assert len(queries) >= 12
    with (
        Traffic(predictions_with_feedback(backend.url("stable"), Rows(seed=601)), rate=15),
        Traffic(predictions_with_feedback(backend.url("canary"), Rows(seed=602)), rate=15),
    ):
        for title, query in queries:
            eventually(
                lambda q=query: backend.prometheus.query(q),
                bool,
                45 * backend.patience,
                f"panel {title!r}: {query}",
            )


def test_the_user_variable_is_this_users_and_has_series(backend: Backend) -> None:
    [dashboard] = backend.dashboards().values()
    [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "user_id"]
    assert (variable["type"], variable["query"]) == ("constant", USER)
    response = requests.get(
        f"{backend.prometheus.url}/api/v1/label/user_id/values",
        params={"match[]": "model_prediction_total"},
        timeout=5,
    ).json()
    assert USER in response["data"]
    assert any(v["type"] == "datasource" for v in dashboard["templating"]["list"])
    assert "__inputs" not in dashboard
