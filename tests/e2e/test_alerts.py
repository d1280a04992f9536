"""Each alert caused for real: seen pending, then firing in Prometheus, delivered by
Alertmanager to the webhook with its labels, and resolved after recovery.

Durations come from the backend's test values (windows of 20-30 s, `for` of 10-15 s), so each
alert takes about a minute on the local stack.
"""

from __future__ import annotations

from alert_checks import alert_states, caused_since, follow_alert_lifecycle, now, wait_resolved
from backends import USER, Backend
from modelmon.ops.rows import Rows
from support import eventually
from traffic import Traffic, bad_inputs, predictions_with_feedback

QUALITY_ALERTS = ("ModelPerformanceDegraded", "ModelR2Low", "ModelAccuracyDropped")


def test_at_baseline_no_model_alert_fires(backend: Backend) -> None:
    stable, canary = backend.url("stable"), backend.url("canary")
    with (
        Traffic(predictions_with_feedback(stable, Rows(seed=101)), rate=15) as first,
        Traffic(predictions_with_feedback(canary, Rows(seed=102)), rate=15) as second,
    ):
        # Long enough for the recording rules' window and every `for` to pass once.
        eventually(
            lambda: first.sent + second.sent,
            lambda n: n >= 700 * backend.patience,
            60 * backend.patience,
            "baseline traffic sent",
        )
        active = [
            a["labels"]["alertname"]
            for a in backend.prometheus.alerts()
            if a["labels"]["alertname"].startswith("Model")
        ]
    assert active == []
    assert first.failures == second.failures == []


def test_drifted_inputs_raise_the_real_error_and_fire_the_quality_alerts(backend: Backend) -> None:
    stable = backend.url("stable")
    labels = {"variant": "stable", "namespace": backend.namespace}
    since = now()
    with Traffic(predictions_with_feedback(stable, Rows.at_level("high", seed=201)), rate=25):
        seen = follow_alert_lifecycle(backend, "ModelPerformanceDegraded", labels, since)
        assert seen[0] == "pending", seen
        for alertname in ("ModelR2Low", "ModelAccuracyDropped", "ModelDriftDetected"):
            follow_alert_lifecycle(backend, alertname, labels, since)
        [mae] = backend.prometheus.query(
            f'model:mae{{namespace="{backend.namespace}",variant="stable"}}'
        )
        assert mae.value > 0.4
    with Traffic(predictions_with_feedback(stable, Rows(seed=202)), rate=25):
        for alertname in QUALITY_ALERTS:
            wait_resolved(backend, alertname, labels, since)


def test_bad_inputs_fire_the_error_rate_alert(backend: Backend) -> None:
    canary = backend.url("canary")
    labels = {"variant": "canary", "namespace": backend.namespace}
    since = now()
    with Traffic(predictions_with_feedback(canary, Rows(seed=301)), rate=20):
        with Traffic(bad_inputs(canary), rate=4):
            seen = follow_alert_lifecycle(backend, "ModelErrorRateHigh", labels, since)
            assert seen[0] == "pending", seen
        wait_resolved(backend, "ModelErrorRateHigh", labels, since)


def test_a_stopped_exporter_fires_exporter_down(backend: Backend) -> None:
    since = now()
    with backend.exporter_stopped("canary") as down_labels:
        labels = {**down_labels, "namespace": backend.namespace}
        eventually(
            lambda: alert_states(backend, "ModelExporterDown", **labels),
            lambda s: "firing" in s,
            60 * backend.patience,
            "ModelExporterDown firing",
            lambda: backend.logs("prometheus"),
        )
        delivered = eventually(
            lambda: caused_since(
                backend.delivered("ModelExporterDown", "firing"),
                since,
                {"service": down_labels["service"]},
            ),
            bool,
            30 * backend.patience,
            "ModelExporterDown delivered",
            lambda: backend.logs("alertmanager"),
        )
        assert delivered[0]["labels"]["user_id"] == USER
    eventually(
        lambda: alert_states(backend, "ModelExporterDown", **labels),
        lambda s: s == [],
        60 * backend.patience,
        "ModelExporterDown resolved",
    )


def test_injected_latency_fires_the_latency_alert_after_a_helm_style_upgrade(
    backend: Backend,
) -> None:
    """The latency knob is set the way a user would: an upgrade with new values, which
    restarts the canary with the new args."""
    key = "model-exporter.canary.faultInjection.latencySeconds"
    labels = {"variant": "canary", "namespace": backend.namespace}
    since = now()
    backend.upgrade({key: "1"})
    try:
        with Traffic(predictions_with_feedback(backend.url("canary"), Rows(seed=401)), rate=4):
            seen = follow_alert_lifecycle(backend, "ModelLatencyHigh", labels, since)
            assert seen[0] == "pending", seen
    finally:
        backend.upgrade({key: "0"})
    with Traffic(predictions_with_feedback(backend.url("canary"), Rows(seed=402)), rate=10):
        wait_resolved(backend, "ModelLatencyHigh", labels, since)
