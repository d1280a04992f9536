"""Each alert caused for real on the local stack: seen pending, then firing in Prometheus,
delivered by Alertmanager to the webhook with its labels, and resolved after recovery.

Durations come from values-e2e.yaml (window 20 s, `for` 10 s), so each takes under a minute.
"""

from __future__ import annotations

from typing import Any

import pytest

from local_stack.stack import LocalStack
from support import eventually
from traffic import Rows, Traffic, bad_inputs, predictions_with_feedback

NAMESPACE, USER = "kubeflow-user01", "user01"
STABLE, CANARY = "e2e-model-exporter-stable-0", "e2e-model-exporter-canary-0"
QUALITY_ALERTS = ("ModelPerformanceDegraded", "ModelR2Low", "ModelAccuracyDropped")
HIGH_DRIFT = {"x4": 0.6, "x1": 0.3}


def alert_states(stack: LocalStack, alertname: str, **labels: str) -> list[str]:
    return [
        alert["state"]
        for alert in stack.prometheus.alerts()
        if alert["labels"]["alertname"] == alertname
        and all(alert["labels"].get(k) == v for k, v in labels.items())
    ]


def logs(stack: LocalStack, *names: str) -> str:
    return "\n".join(
        f"--- {p.name} ---\n{p.log_tail(15)}"
        for p in stack.supervisor.processes
        if not names or p.name in names
    )


def follow_alert_lifecycle(
    stack: LocalStack, webhook: Any, alertname: str, labels: dict[str, str], timeout: float = 90
) -> list[str]:
    """Polls until the alert fires; returns the states seen on the way."""
    seen: list[str] = []

    def states() -> list[str]:
        current = alert_states(stack, alertname, **labels)
        if current and (not seen or seen[-1] != current[0]):
            seen.append(current[0])
        return current

    eventually(
        states,
        lambda s: "firing" in s,
        timeout,
        f"{alertname}{labels} firing",
        lambda: logs(stack, "prometheus"),
        interval=0.5,
    )
    delivered = eventually(
        lambda: webhook.alerts(alertname, "firing"),
        lambda found: any(all(a["labels"].get(k) == v for k, v in labels.items()) for a in found),
        30,
        f"{alertname} delivered to the webhook",
        lambda: logs(stack, "alertmanager"),
    )
    assert delivered[0]["labels"]["namespace"] == NAMESPACE
    assert delivered[0]["labels"]["user_id"] == USER
    assert delivered[0]["labels"]["severity"] in ("warning", "critical")
    return seen


def wait_resolved(stack: LocalStack, webhook: Any, alertname: str, labels: dict[str, str]) -> None:
    eventually(
        lambda: alert_states(stack, alertname, **labels),
        lambda s: s == [],
        90,
        f"{alertname}{labels} resolved in Prometheus",
        lambda: logs(stack, "prometheus"),
    )
    eventually(
        lambda: webhook.alerts(alertname, "resolved"),
        bool,
        30,
        f"{alertname} resolution delivered",
        lambda: logs(stack, "alertmanager"),
    )


def test_at_baseline_no_model_alert_fires(local_stack):
    stable, canary = (local_stack.pod(n).url("http") for n in (STABLE, CANARY))
    with (
        Traffic(predictions_with_feedback(stable, Rows(seed=101)), rate=15) as first,
        Traffic(predictions_with_feedback(canary, Rows(seed=102)), rate=15) as second,
    ):
        # Long enough for the recording rules' window and every `for` to pass once.
        eventually(
            lambda: first.sent + second.sent, lambda n: n >= 700, 60, "baseline traffic sent"
        )
        active = [
            a["labels"]["alertname"]
            for a in local_stack.prometheus.alerts()
            if a["labels"]["alertname"].startswith("Model")
        ]
    assert active == []
    assert first.failures == second.failures == []


def test_drifted_inputs_raise_the_real_error_and_fire_the_quality_alerts(local_stack, webhook):
    stable = local_stack.pod(STABLE).url("http")
    labels = {"variant": "stable", "namespace": NAMESPACE}
    with Traffic(predictions_with_feedback(stable, Rows(seed=201, shift=HIGH_DRIFT)), rate=25):
        seen = follow_alert_lifecycle(local_stack, webhook, "ModelPerformanceDegraded", labels)
        assert seen[0] == "pending", seen
        for alertname in ("ModelR2Low", "ModelAccuracyDropped", "ModelDriftDetected"):
            follow_alert_lifecycle(local_stack, webhook, alertname, labels)
        [mae] = local_stack.prometheus.query(
            f'model:mae{{namespace="{NAMESPACE}",variant="stable"}}'
        )
        assert float(mae["value"][1]) > 0.4
    with Traffic(predictions_with_feedback(stable, Rows(seed=202)), rate=25):
        for alertname in QUALITY_ALERTS:
            wait_resolved(local_stack, webhook, alertname, labels)


def test_bad_inputs_fire_the_error_rate_alert(local_stack, webhook):
    canary = local_stack.pod(CANARY).url("http")
    labels = {"variant": "canary", "namespace": NAMESPACE}
    with Traffic(predictions_with_feedback(canary, Rows(seed=301)), rate=20):
        with Traffic(bad_inputs(canary), rate=4):
            seen = follow_alert_lifecycle(local_stack, webhook, "ModelErrorRateHigh", labels)
            assert seen[0] == "pending", seen
        wait_resolved(local_stack, webhook, "ModelErrorRateHigh", labels)


@pytest.mark.parametrize("pod_name", [CANARY])
def test_a_stopped_exporter_fires_exporter_down(local_stack, webhook, pod_name):
    labels = {"pod": pod_name, "namespace": NAMESPACE}
    pod = local_stack.pod(pod_name)
    assert pod.process is not None
    pod.process.stop()
    try:
        follow_alert_lifecycle_down(local_stack, webhook, labels)
    finally:
        local_stack.restart_pod(pod_name)
    eventually(
        lambda: alert_states(local_stack, "ModelExporterDown", **labels),
        lambda s: s == [],
        60,
        "ModelExporterDown resolved",
    )


def follow_alert_lifecycle_down(stack: LocalStack, webhook: Any, labels: dict[str, str]) -> None:
    eventually(
        lambda: alert_states(stack, "ModelExporterDown", **labels),
        lambda s: "firing" in s,
        60,
        "ModelExporterDown firing",
        lambda: logs(stack, "prometheus"),
    )
    eventually(
        lambda: webhook.alerts("ModelExporterDown", "firing"),
        bool,
        30,
        "ModelExporterDown delivered",
        lambda: logs(stack, "alertmanager"),
    )


def test_injected_latency_fires_the_latency_alert_after_a_helm_style_upgrade(local_stack, webhook):
    """The latency knob is set the way a user would: an upgrade with new values, which
    restarts the canary pod with the new args."""
    key = "model-exporter.canary.faultInjection.latencySeconds"
    labels = {"variant": "canary", "namespace": NAMESPACE}
    assert local_stack.upgrade({key: "1"}) == [CANARY]
    canary = local_stack.pod(CANARY)
    assert "--inject-latency-seconds=1" in canary.container.args
    try:
        with Traffic(predictions_with_feedback(canary.url("http"), Rows(seed=401)), rate=4):
            seen = follow_alert_lifecycle(local_stack, webhook, "ModelLatencyHigh", labels)
            assert seen[0] == "pending", seen
    finally:
        assert local_stack.upgrade({key: "0"}) == [CANARY]
    with Traffic(predictions_with_feedback(canary.url("http"), Rows(seed=402)), rate=10):
        wait_resolved(local_stack, webhook, "ModelLatencyHigh", labels)
