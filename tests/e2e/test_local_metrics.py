"""Through Prometheus's HTTP API: the rendered exporters are scraped with their labels."""

from __future__ import annotations

import requests

from local_stack.processes import wait_until
from local_stack.stack import LocalStack
from support import eventually
from traffic import Rows, Traffic, predictions_with_feedback

ROW = {f"x{i}": 0.4 for i in range(1, 11)}


def test_every_exporter_and_router_target_is_up(local_stack: LocalStack):
    targets = local_stack.prometheus.targets()
    assert {t["labels"]["pod"] for t in targets} == {
        "e2e-model-exporter-stable-0",
        "e2e-model-exporter-canary-0",
        "e2e-model-exporter-router-0",
    }
    # Other tests restart pods; a restarted pod is up again from its next scrape.
    wait_until(local_stack.targets_healthy, 20, describe="every target up")
    query = 'sum(up{namespace="kubeflow-user01"})'
    wait_until(
        lambda: float(local_stack.prometheus.query(query)[0]["value"][1]) == 3,
        20,
        describe=f"{query} == 3",
    )


def test_model_metric_carries_variant_version_and_user(local_stack: LocalStack):
    series = local_stack.prometheus.query("model_prediction_total")
    labels = {(s["metric"]["variant"], s["metric"]["model_version"]) for s in series}
    assert labels == {("stable", "1.0.0"), ("canary", "2.0.0")}
    assert {s["metric"]["user_id"] for s in series} == {"user01"}


def test_predictions_show_up_in_prometheus(local_stack: LocalStack):
    stable = next(p for p in local_stack.pods if p.name == "e2e-model-exporter-stable-0")
    for _ in range(3):
        response = requests.post(stable.url("http", "/predict"), json={"features": ROW}, timeout=5)
        response.raise_for_status()
    query = 'model_prediction_total{variant="stable"}'

    def counted() -> bool:
        result = local_stack.prometheus.query(query)
        return bool(result) and float(result[0]["value"][1]) >= 3

    wait_until(counted, 20, describe=f"{query} ≥ 3")


CONTRACT = (
    "model_prediction_total",
    "model_prediction_errors_total",
    "model_prediction_latency_seconds_bucket",
    "model_mae_score",
    "model_r2_score",
    "model_accuracy_score",
    "model_feedback_total",
    "model_feedback_absolute_error_total",
    "model_feedback_squared_error_total",
    "model_feedback_target_positive_total",
    "model_feedback_target_negative_total",
    "model_feedback_target_squared_total",
    "model_feedback_within_tolerance_total",
    "model_feature_drift_score",
    "model_drift_score",
    "model_version_info",
)
MOVING = (
    "model_prediction_total",
    "model_feedback_total",
    "model_feedback_absolute_error_total",
    "model_prediction_latency_seconds_count",
)


def totals(stack: LocalStack, metric: str) -> dict[str, float]:
    return {
        r["metric"]["variant"]: float(r["value"][1])
        for r in stack.prometheus.query(
            f'sum by (variant) ({metric}{{namespace="kubeflow-user01"}})'
        )
    }


def test_every_contract_metric_exists_for_both_variants_and_moves_with_traffic(local_stack):
    before = {metric: totals(local_stack, metric) for metric in MOVING}
    urls = {
        v: local_stack.pod(f"e2e-model-exporter-{v}-0").url("http") for v in ("stable", "canary")
    }
    senders = [
        Traffic(predictions_with_feedback(url, Rows(seed=500 + i)), rate=20)
        for i, url in enumerate(urls.values())
    ]
    with senders[0], senders[1]:
        for metric in MOVING:
            eventually(
                lambda m=metric: totals(local_stack, m),
                lambda now, m=metric: all(now.get(v, 0) >= before[m].get(v, 0) + 20 for v in urls),
                30,
                f"{metric} grows for both variants",
            )
        eventually(  # drift is scored once the window holds --drift-min-samples rows
            lambda: totals(local_stack, "model_drift_score"),
            lambda now: set(now) == set(urls),
            30,
            "model_drift_score for both variants",
        )
    for metric in CONTRACT:
        series = local_stack.prometheus.query(f'{metric}{{namespace="kubeflow-user01"}}')
        by_variant = {s["metric"]["variant"]: s["metric"] for s in series}
        assert set(by_variant) == {"stable", "canary"}, metric
        for variant, labels in by_variant.items():
            assert labels["user_id"] == "user01", metric
            assert labels["model_version"] == {"stable": "1.0.0", "canary": "2.0.0"}[variant]
    reasons = {
        s["metric"]["reason"]
        for s in local_stack.prometheus.query('model_prediction_errors_total{variant="stable"}')
    }
    assert reasons == {"bad_input", "internal", "timeout"}
    features = {
        s["metric"]["feature"]
        for s in local_stack.prometheus.query('model_feature_drift_score{variant="stable"}')
    }
    assert features == {f"x{i}" for i in range(1, 11)}
