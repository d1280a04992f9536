"""Faults survived, under steady load, counted: a crash-looping canary, a rolling upgrade, and
restarts of Prometheus, Alertmanager and the retrain webhook. Each test counts what was sent,
answered and lost, and what was delivered, so "nothing lost" cannot pass for "nothing sent";
the counts are reported at the end of the run (see conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from alert_checks import alert_states, caused_since, now, wait_resolved
from backends import Backend
from modelmon.contract import RETRAIN_DECISIONS
from modelmon.ops.rows import Rows
from support import eventually, parse_samples
from traffic import CountedLoad, Traffic, predictions_with_feedback

EXPORTER_DOWN = "ModelExporterDown"
RATE = 20  # predictions per second through the router
STEADY = 2.0  # seconds of load before and after each fault


def ready(backend: Backend, part: str) -> bool:
    try:
        return requests.get(f"{backend.url(part)}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def deliveries(backend: Backend, status: str, since: Any, service: str) -> list[dict[str, Any]]:
    return caused_since(backend.delivered(EXPORTER_DOWN, status), since, {"service": service})


def wait_exporter_down_delivered(backend: Backend, since: Any, service: str) -> None:
    eventually(
        lambda: deliveries(backend, "firing", since, service),
        bool,
        60 * backend.patience,
        f"{EXPORTER_DOWN} for {service} delivered",
        lambda: backend.logs("prometheus", "alertmanager"),
    )


def wait_exporter_down_gone(backend: Backend, service: str) -> None:
    """An earlier test's ModelExporterDown for the service resolved, so this test's is new (an
    alert that never resolved goes on with its old startsAt, and is not notified again)."""
    eventually(
        lambda: alert_states(backend, EXPORTER_DOWN, service=service),
        lambda states: states == [],
        60 * backend.patience,
        f"no {EXPORTER_DOWN} for {service} left from before",
    )


def test_a_crash_looping_canary_loses_no_prediction(
    backend: Backend, fault_report: Callable[..., None]
) -> None:
    """Three SIGKILLs in a row: the kubelet restarts the canary at once, then after 10 s, then
    after 20 s; the router fails over meanwhile, and ModelExporterDown fires during the long
    back-off and resolves after it."""
    canary = backend.service("canary")
    wait_exporter_down_gone(backend, canary)
    backend.set_weight(50)
    since = now()
    recovery: list[float] = []
    fired = False
    try:
        with CountedLoad(backend.url("router"), RATE, Rows(seed=301)) as load:
            time.sleep(STEADY)
            restarts_before = backend.restarts("canary")
            for crash in range(3):
                eventually(lambda: ready(backend, "canary"), bool, 60, "the canary ready")
                backend.crash("canary")
                crashed_at = time.monotonic()
                eventually(
                    lambda n=crash: backend.restarts("canary") > restarts_before + n,
                    bool,
                    60 * backend.patience,
                    f"restart {crash + 1} counted",
                )
                while not ready(backend, "canary"):
                    fired = fired or "firing" in alert_states(
                        backend, EXPORTER_DOWN, service=canary
                    )
                    assert time.monotonic() - crashed_at < 90 * backend.patience
                    time.sleep(0.5)
                recovery.append(time.monotonic() - crashed_at)
            time.sleep(STEADY)
        made = list(load.predictions)
    finally:
        backend.set_weight(10)
    assert load.sent > 30 * RATE, load.summary()
    assert load.failed == 0, (load.summary(), load.lost[:3])
    assert backend.restarts("canary") == restarts_before + 3
    # the kubelet's back-off: at once, then 10 s, then 20 s (each plus the start-up)
    assert recovery[1] >= 9.5, recovery
    assert recovery[2] >= 19.5, recovery
    assert recovery[1] < 10 + 30 * backend.patience, recovery
    assert fired, f"{EXPORTER_DOWN} did not fire during the 20 s back-off"
    wait_exporter_down_delivered(backend, since, canary)
    eventually(
        lambda: alert_states(backend, EXPORTER_DOWN, service=canary),
        lambda states: states == [],
        60 * backend.patience,
        f"{EXPORTER_DOWN} resolved",
    )
    # Ground truth for predictions made before the crashes: stable still holds its own; the
    # canary lost its pending store with its process, so it answers 404, never a 5xx.
    session = requests.Session()
    answers: dict[int, int] = {}
    for prediction_id, truth in made[: 10 * RATE]:
        code = session.post(
            f"{backend.url('router')}/feedback",
            json={"prediction_id": prediction_id, "actual": truth},
            timeout=10,
        ).status_code
        answers[code] = answers.get(code, 0) + 1
    assert set(answers) <= {200, 404}, answers
    assert answers.get(200, 0) > 0, answers
    fault_report(
        "canary SIGKILL x3 (crash loop)",
        sent=load.sent,
        failed=load.failed,
        delivered=len(deliveries(backend, "firing", since, canary)),
        recovery_s=[round(r, 1) for r in recovery],
        feedback_after=answers,
    )


def test_a_rolling_upgrade_of_stable_loses_no_prediction(
    backend: Backend, fault_report: Callable[..., None]
) -> None:
    new_model = "/opt/modelmon/models/model-v2.joblib"
    try:
        with CountedLoad(backend.url("router"), RATE, Rows(seed=302)) as load:
            time.sleep(STEADY)
            started = time.monotonic()
            backend.upgrade({"model-exporter.stable.modelPath": new_model})
            rolled = time.monotonic() - started
            time.sleep(STEADY)
        answer = requests.post(
            f"{backend.url('stable')}/predict",
            json={"features": Rows(seed=303).take()[0]},
            timeout=10,
        ).json()
    finally:
        backend.upgrade({"model-exporter.stable.modelPath": "/opt/modelmon/models/model-v1.joblib"})
    assert answer["model_version"] == "2.0.0", "the new pod serves the new model file"
    assert load.sent > 2 * STEADY * RATE, load.summary()
    assert load.failed == 0, (load.summary(), load.lost[:3])
    fault_report(
        "rolling upgrade of stable (new model file)",
        sent=load.sent,
        failed=load.failed,
        recovery_s=round(rolled, 1),
    )


def test_a_prometheus_restart_keeps_series_and_rule_state(
    backend: Backend, fault_report: Callable[..., None]
) -> None:
    """While ModelExporterDown fires for a stopped canary, Prometheus restarts on its data: the
    alert fires again without a resolution or a second notification in between, no other
    target's absent() fires, and the counters go on from where they were."""
    canary = backend.service("canary")
    wait_exporter_down_gone(backend, canary)
    stable_total = (
        f'sum(model_prediction_total{{namespace="{backend.namespace}",variant="stable"}})'
    )
    since = now()
    with (
        CountedLoad(backend.url("stable"), RATE, Rows(seed=304)) as load,
        backend.scaled_to_zero("canary"),
    ):
        wait_exporter_down_delivered(backend, since, canary)
        before = backend.prometheus.value(stable_total) or 0.0
        restarted_at = time.time()
        started = time.monotonic()
        backend.restart_prometheus()
        recovery = time.monotonic() - started
        eventually(
            lambda: alert_states(backend, EXPORTER_DOWN, service=canary),
            lambda states: "firing" in states,
            60 * backend.patience,
            f"{EXPORTER_DOWN} firing again after the restart",
        )
        eventually(
            lambda: backend.prometheus.value(stable_total) or 0.0,
            lambda after: after > before,
            60 * backend.patience,
            "stable's counter moving on from its value before the restart",
        )
        time.sleep(5 * backend.patience)  # a few of Alertmanager's group intervals
        firing = deliveries(backend, "firing", since, canary)
        resolved = deliveries(backend, "resolved", since, canary)
    assert len(firing) == 1, firing
    assert resolved == [], "the restart looked like a resolution"
    others = backend.prometheus.query(
        f'max_over_time(ALERTS{{alertname="{EXPORTER_DOWN}",alertstate="firing",'
        f'namespace="{backend.namespace}",service!="{canary}"}}[5m])'
    )
    assert others == [], f"a false absent() alert: {others}"
    window = backend.prometheus.query_range(stable_total, restarted_at - 60, time.time(), 2)
    [series] = window
    times = [t for t, _value in series.points]
    assert min(times) < restarted_at < max(times), "series from before and after the restart"
    assert load.failed == 0, load.summary()
    fault_report(
        "Prometheus restarted while an alert fires",
        sent=load.sent,
        failed=load.failed,
        delivered=len(firing),
        recovery_s=round(recovery, 1),
    )


def test_an_alertmanager_restart_notifies_a_firing_alert_exactly_once(
    backend: Backend, fault_report: Callable[..., None]
) -> None:
    """Alertmanager's notification log survives its restart: when Prometheus sends the firing
    alert again, the restarted Alertmanager knows it notified already."""
    canary = backend.service("canary")
    wait_exporter_down_gone(backend, canary)
    since = now()
    with backend.scaled_to_zero("canary"):
        wait_exporter_down_delivered(backend, since, canary)
        started = time.monotonic()
        backend.restart_alertmanager()
        recovery = time.monotonic() - started

        def active_again() -> bool:
            return any(
                alert["labels"].get("alertname") == EXPORTER_DOWN
                and alert["labels"].get("service") == canary
                and alert["status"]["state"] == "active"
                for alert in backend.alertmanager_alerts()
            )

        # Prometheus resends firing alerts every minute (its resend delay)
        eventually(active_again, bool, 90 * backend.patience, "the alert back in Alertmanager")
        time.sleep(5 * backend.patience)  # group_wait and a few group intervals
        firing = deliveries(backend, "firing", since, canary)
    assert len(firing) == 1, f"notified {len(firing)} times: {firing}"
    fault_report(
        "Alertmanager restarted while an alert fires",
        delivered=len(firing),
        recovery_s=round(recovery, 1),
    )


def decisions(backend: Backend) -> dict[str, float]:
    text = requests.get(f"{backend.url('retrain-webhook')}/metrics", timeout=5).text
    return {
        dict(labels)["action"]: value
        for (name, labels), value in parse_samples(text).items()
        if name == RETRAIN_DECISIONS.name
    }


def test_a_retrain_webhook_that_was_down_gets_the_alert_once_back_and_retrains_once(
    backend: Backend, fault_report: Callable[..., None]
) -> None:
    """The quality alerts fire while the webhook has no pod: Alertmanager keeps retrying, and
    delivers once the webhook is back; the webhook asks for one retrain (a dry run here), and a
    duplicate delivery is held by the cooldown."""
    stable = backend.url("stable")
    labels = {"variant": "stable", "namespace": backend.namespace}
    since = now()
    alertname = "ModelPerformanceDegraded"
    with Traffic(predictions_with_feedback(stable, Rows.at_level("high", seed=305)), rate=25):
        with backend.scaled_to_zero("retrain-webhook"):
            eventually(
                lambda: alert_states(backend, alertname, **labels),
                lambda states: "firing" in states,
                90 * backend.patience,
                f"{alertname} firing while the webhook is down",
            )
            down_since = time.monotonic()
            time.sleep(5 * backend.patience)  # Alertmanager tries, and fails
        back_after = time.monotonic() - down_since
        delivered = eventually(
            lambda: caused_since(
                backend.retrain_webhook_alerts(alertname, "firing"), since, labels
            ),
            bool,
            60 * backend.patience,
            f"{alertname} delivered to the webhook once it is back",
            lambda: backend.logs("alertmanager", "retrain-webhook"),
        )
        counted = eventually(
            lambda: decisions(backend),
            lambda d: d.get("dry_run", 0) >= 1,
            30 * backend.patience,
            "the webhook's retrain decision",
        )
        duplicate = {
            "alerts": [{**delivered[0], "annotations": {"value": "0.6", "threshold": "0.4"}}]
        }
        answer = requests.post(
            f"{backend.url('retrain-webhook')}/alerts",
            json=duplicate,
            headers={"Authorization": f"Bearer {backend.retrain_webhook_token()}"},
            timeout=10,
        )
        after = decisions(backend)
    assert answer.status_code == 200, answer.text
    assert [d["action"] for d in answer.json()["decisions"]] == ["cooldown"]
    assert counted["dry_run"] == after["dry_run"] == 1, after
    with Traffic(predictions_with_feedback(stable, Rows(seed=306)), rate=25):
        for name in (alertname, "ModelR2Low", "ModelAccuracyDropped"):
            wait_resolved(backend, name, labels, since)
    fault_report(
        "retrain webhook down while a quality alert fires",
        delivered=len(delivered),
        retrain_requests=after["dry_run"],
        held_by_cooldown=after.get("cooldown", 0),
        recovery_s=round(back_after, 1),
    )
