"""Through Prometheus's HTTP API: the exporters and the router are scraped with their labels,
every metric of the contract exists for both variants, and the values move with traffic."""

from __future__ import annotations

import requests

from backends import USER, Backend
from local_stack.processes import wait_until
from modelmon.ops.rows import Rows
from support import eventually
from traffic import Traffic, predictions_with_feedback

ROW = {f"x{i}": 0.4 for i in range(1, 11)}


def test_every_exporter_and_router_target_is_up(backend: Backend):
    def services_up() -> bool:
        targets = [
            t
            for t in backend.prometheus.targets()
            if t["labels"].get("namespace") == backend.namespace
            and t["labels"].get("service", "").startswith(backend.fullname)
        ]
        return {t["labels"]["service"] for t in targets} == backend.scraped_services and all(
            t["health"] == "up" for t in targets
        )

    # Other tests restart pods; a restarted pod is up again from its next scrape.
    wait_until(services_up, 20 * backend.patience, describe="every model target up")
    query = f'sum(up{{namespace="{backend.namespace}",service=~"{backend.fullname}-.*"}})'
    wait_until(
        lambda: (
            float(backend.prometheus.query(query)[0]["value"][1]) == len(backend.scraped_services)
        ),
        20 * backend.patience,
        describe=f"{query} == {len(backend.scraped_services)}",
    )


def test_model_metric_carries_variant_version_and_user(backend: Backend):
    series = backend.prometheus.query(f'model_prediction_total{{namespace="{backend.namespace}"}}')
    labels = {(s["metric"]["variant"], s["metric"]["model_version"]) for s in series}
    assert labels == {("stable", "1.0.0"), ("canary", "2.0.0")}
    assert {s["metric"]["user_id"] for s in series} == {USER}


def test_predictions_show_up_in_prometheus(backend: Backend):
    query = f'sum(model_prediction_total{{namespace="{backend.namespace}",variant="stable"}})'
    before = backend.prometheus.query(query)
    start = float(before[0]["value"][1]) if before else 0.0
    for _ in range(3):
        response = requests.post(
            f"{backend.url('stable')}/predict", json={"features": ROW}, timeout=5
        )
        response.raise_for_status()

    def counted() -> bool:
        result = backend.prometheus.query(query)
        return bool(result) and float(result[0]["value"][1]) >= start + 3

    wait_until(counted, 20 * backend.patience, describe=f"{query} grew by 3")


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


def totals(backend: Backend, metric: str) -> dict[str, float]:
    return {
        r["metric"]["variant"]: float(r["value"][1])
        for r in backend.prometheus.query(
            f'sum by (variant) ({metric}{{namespace="{backend.namespace}"}})'
        )
    }


def test_every_contract_metric_exists_for_both_variants_and_moves_with_traffic(backend: Backend):
    before = {metric: totals(backend, metric) for metric in MOVING}
    urls = {v: backend.url(v) for v in ("stable", "canary")}
    senders = [
        Traffic(predictions_with_feedback(url, Rows(seed=500 + i)), rate=20)
        for i, url in enumerate(urls.values())
    ]
    with senders[0], senders[1]:
        for metric in MOVING:
            eventually(
                lambda m=metric: totals(backend, m),
                lambda now, m=metric: all(now.get(v, 0) >= before[m].get(v, 0) + 20 for v in urls),
                30 * backend.patience,
                f"{metric} grows for both variants",
            )
        eventually(  # drift is scored once the window holds --drift-min-samples rows
            lambda: totals(backend, "model_drift_score"),
            lambda now: set(now) == set(urls),
            30 * backend.patience,
            "model_drift_score for both variants",
        )
    for metric in CONTRACT:
        series = backend.prometheus.query(f'{metric}{{namespace="{backend.namespace}"}}')
        by_variant = {s["metric"]["variant"]: s["metric"] for s in series}
        assert set(by_variant) == {"stable", "canary"}, metric
        for variant, labels in by_variant.items():
            assert labels["user_id"] == USER, metric
            assert labels["model_version"] == {"stable": "1.0.0", "canary": "2.0.0"}[variant]
    reasons = {
        s["metric"]["reason"]
        for s in backend.prometheus.query(
            f'model_prediction_errors_total{{namespace="{backend.namespace}",variant="stable"}}'
        )
    }
    assert reasons == {"bad_input", "internal", "timeout"}
    features = {
        s["metric"]["feature"]
        for s in backend.prometheus.query(
            f'model_feature_drift_score{{namespace="{backend.namespace}",variant="stable"}}'
        )
    }
    assert features == {f"x{i}" for i in range(1, 11)}
