"""Every query of every panel of the shipped dashboard, variables filled in as Grafana would,
returns data from the local stack's Prometheus while traffic flows."""

from __future__ import annotations

import json
import re

import requests

from local_stack import manifests
from local_stack.stack import LocalStack
from support import eventually
from traffic import Rows, Traffic, predictions_with_feedback

VARIABLES = {
    "$user_id": "user01",
    "$__rate_interval": "30s",  # Grafana: at least four scrape intervals (2 s here)
    "$__range": "5m",
}


def dashboards(stack: LocalStack) -> dict[str, dict]:
    found = {}
    for config_map in manifests.of_kind(stack.objects, "ConfigMap"):
        if config_map["metadata"]["labels"].get("grafana_dashboard") == "1":
            for name, text in config_map["data"].items():
                found[name] = json.loads(text)
    return found


def fill(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    leftover = re.findall(r"\$\{?\w+", expr)
    assert not leftover, f"unfilled variables {leftover} in {expr}"
    return expr


def test_every_panel_query_returns_data(local_stack):
    [dashboard] = dashboards(local_stack).values()
    queries = [
        (panel["title"], fill(target["expr"]))
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    assert len(queries) >= 12
    urls = [local_stack.pod(f"e2e-model-exporter-{v}-0").url("http") for v in ("stable", "canary")]
    with (
        Traffic(predictions_with_feedback(urls[0], Rows(seed=601)), rate=15),
        Traffic(predictions_with_feedback(urls[1], Rows(seed=602)), rate=15),
    ):
        for title, query in queries:
            eventually(
                lambda q=query: local_stack.prometheus.query(q),
                bool,
                45,
                f"panel {title!r}: {query}",
            )


def test_the_user_variable_lists_this_user(local_stack):
    [dashboard] = dashboards(local_stack).values()
    [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "user_id"]
    metric, label = re.fullmatch(
        r"label_values\((\w+), (\w+)\)", variable["query"]["query"]
    ).groups()
    response = requests.get(
        f"{local_stack.prometheus.url}/api/v1/label/{label}/values",
        params={"match[]": metric},
        timeout=5,
    ).json()
    assert "user01" in response["data"]
    assert any(v["type"] == "datasource" for v in dashboard["templating"]["list"])
    assert "__inputs" not in dashboard
