"""The local tier's assertions, on a real cluster: metrics, the canary split, an alert."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from support import eventually, within_binomial_bound
from traffic import Rows, Traffic, bad_inputs, predictions_with_feedback

pytestmark = pytest.mark.kind

N = 2000
ROW = {f"x{i}": 0.5 for i in range(1, 11)}


def test_contract_metrics_for_both_variants(kind_stack, prometheus, urls):
    with (
        Traffic(predictions_with_feedback(urls["stable"], Rows(seed=1)), rate=10),
        Traffic(predictions_with_feedback(urls["canary"], Rows(seed=2)), rate=10),
    ):
        for metric in (
            "model_prediction_total",
            "model_feedback_total",
            "model_mae_score",
            "model_drift_score",
            "model_version_info",
        ):
            series = eventually(
                lambda m=metric: prometheus.query(f'{m}{{namespace="monitoring"}}'),
                lambda found: {s["metric"]["variant"] for s in found} == {"stable", "canary"},
                120,
                f"{metric} for both variants",
                lambda: kind_stack.logs("monitoring-model-exporter-stable"),
            )
            assert all(s["metric"]["user_id"] == "user01" for s in series)


@pytest.mark.parametrize("weight", [10, 50, 100])
def test_canary_split_within_the_binomial_bound(kind_stack, prometheus, urls, weight):
    kind_stack.set_weight(weight, urls["router"])
    query = 'sum by (variant) (router_requests_total{route="predict",namespace="monitoring"})'

    def counts() -> dict[str, float]:
        return {r["metric"]["variant"]: float(r["value"][1]) for r in prometheus.query(query)}

    before = counts()
    session = requests.Session()

    def send(_: int) -> str | None:
        response = session.post(f"{urls['router']}/predict", json={"features": ROW}, timeout=30)
        assert response.status_code == 200, response.text
        return response.headers.get("X-Model-Variant")

    with ThreadPoolExecutor(8) as pool:
        seen = Counter(pool.map(send, range(N)))
    assert within_binomial_bound(seen["canary"], N, weight / 100), seen
    after = eventually(
        counts,
        lambda now: sum(now.values()) - sum(before.values()) >= N,
        120,
        "Prometheus counted every request",
    )
    for variant in ("stable", "canary"):
        assert after.get(variant, 0) - before.get(variant, 0) == seen[variant]


def test_bad_inputs_fire_the_error_rate_alert_in_alertmanager(kind_stack, prometheus, urls):
    alertmanager = kind_stack.forward("monitoring-kube-prometheus-alertmanager", 9093)
    labels = {"alertname": "ModelErrorRateHigh", "variant": "canary"}

    def states() -> list[str]:
        return [
            a["state"]
            for a in prometheus.alerts()
            if all(a["labels"].get(k) == v for k, v in labels.items())
        ]

    def in_alertmanager() -> list[dict]:
        response = requests.get(
            f"{alertmanager}/api/v2/alerts",
            timeout=5,
            params={"filter": [f'{k}="{v}"' for k, v in labels.items()]},
        )
        return response.json()

    with Traffic(predictions_with_feedback(urls["canary"], Rows(seed=3)), rate=10):
        with Traffic(bad_inputs(urls["canary"]), rate=3):
            eventually(states, lambda s: "firing" in s, 240, "ModelErrorRateHigh firing")
            [alert] = eventually(in_alertmanager, bool, 120, "the alert in Alertmanager")
            assert alert["labels"]["namespace"] == "monitoring"
            assert alert["labels"]["user_id"] == "user01"
        eventually(states, lambda s: s == [], 240, "ModelErrorRateHigh resolved")
