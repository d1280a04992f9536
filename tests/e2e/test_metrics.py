"""Through Prometheus's HTTP API: the exporters and the router are scraped with their labels,
every metric of the contract exists for both variants, and the values move with traffic."""

from __future__ import annotations

import requests

from backends import USER, Backend
from local_stack.processes import wait_until
from modelmon import contract
from modelmon.contract import PredictionError, Variant
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
        lambda: backend.prometheus.value(query) == len(backend.scraped_services),
        20 * backend.patience,
        describe=f"{query} == {len(backend.scraped_services)}",
    )


def test_model_metric_carries_variant_version_and_user(backend: Backend):
    series = backend.prometheus.query(f'{contract.PREDICTIONS}{{namespace="{backend.namespace}"}}')
    labels = {(s.labels["variant"], s.labels["model_version"]) for s in series}
    assert labels == {("stable", "1.0.0"), ("canary", "2.0.0")}
    assert {s.labels["user_id"] for s in series} == {USER}


def test_predictions_show_up_in_prometheus(backend: Backend):
    query = f'sum({contract.PREDICTIONS}{{namespace="{backend.namespace}",variant="stable"}})'
    start = backend.prometheus.value(query) or 0.0
    for _ in range(3):
        response = requests.post(
            f"{backend.url('stable')}/predict", json={"features": ROW}, timeout=5
        )
        response.raise_for_status()

    def counted() -> bool:
        return (backend.prometheus.value(query) or 0.0) >= start + 3

    wait_until(counted, 20 * backend.patience, describe=f"{query} grew by 3")


MOVING = (
    contract.PREDICTIONS.name,
    contract.FEEDBACK.name,
    contract.FEEDBACK_ABSOLUTE_ERROR.name,
    f"{contract.PREDICTION_LATENCY}_count",
)


def totals(backend: Backend, metric: str) -> dict[str, float]:
    return backend.prometheus.by_label(
        f'sum by (variant) ({metric}{{namespace="{backend.namespace}"}})', "variant"
    )


def test_every_contract_metric_exists_for_both_variants_and_moves_with_traffic(backend: Backend):
    before = {metric: totals(backend, metric) for metric in MOVING}
    urls = {v: backend.url(v) for v in contract.VARIANTS}
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
            lambda: totals(backend, contract.DRIFT_SCORE.name),
            lambda now: set(now) == set(urls),
            30 * backend.patience,
            "model_drift_score for both variants",
        )
    versions = {Variant.STABLE: "1.0.0", Variant.CANARY: "2.0.0"}
    for spec in contract.EXPORTER_METRICS:
        metric = spec.series()[0]
        series = backend.prometheus.query(f'{metric}{{namespace="{backend.namespace}"}}')
        by_variant = {s.labels["variant"]: s.labels for s in series}
        assert set(by_variant) == set(contract.VARIANTS), metric
        for variant, labels in by_variant.items():
            assert set(spec.labels) <= set(labels), metric
            assert labels["user_id"] == USER, metric
            assert labels["model_version"] == versions[Variant(variant)]
    stable = f'namespace="{backend.namespace}",variant="stable"'
    errors = backend.prometheus.query(f"{contract.PREDICTION_ERRORS}{{{stable}}}")
    assert {s.labels["reason"] for s in errors} == set(PredictionError)
    features = {
        s.labels["feature"]
        for s in backend.prometheus.query(f"{contract.FEATURE_DRIFT_SCORE}{{{stable}}}")
    }
    assert features == {f"x{i}" for i in range(1, 11)}
