"""What the end-to-end tests ask of alerts: their states in Prometheus, the deliveries a test
caused, and resolution (shared by test_alerts and test_faults)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backends import USER, Alert, Backend
from support import eventually

# Prometheus stamps startsAt with its own clock, which may run behind the test's by this much.
CLOCK_SLACK = timedelta(seconds=2)


def now() -> datetime:
    return datetime.now(UTC)


def has_labels(alert: Alert, labels: dict[str, str]) -> bool:
    return all(alert["labels"].get(k) == v for k, v in labels.items())


def caused_since(alerts: list[Alert], since: datetime, labels: dict[str, str]) -> list[Alert]:
    """The deliveries of alerts with these labels that began after the test caused them, not
    those of an earlier test or of the stack's start."""
    return [
        alert
        for alert in alerts
        if has_labels(alert, labels)
        and datetime.fromisoformat(alert["startsAt"]) >= since - CLOCK_SLACK
    ]


def alert_states(backend: Backend, alertname: str, **labels: str) -> list[str]:
    return [
        alert["state"]
        for alert in backend.prometheus.alerts()
        if has_labels(alert, {"alertname": alertname, **labels})
    ]


def follow_alert_lifecycle(
    backend: Backend,
    alertname: str,
    labels: dict[str, str],
    since: datetime,
    timeout: float = 90,
) -> list[str]:
    """Polls until the alert fires and reaches the webhook; returns the states seen."""
    seen: list[str] = []

    def states() -> list[str]:
        current = alert_states(backend, alertname, **labels)
        if current and (not seen or seen[-1] != current[0]):
            seen.append(current[0])
        return current

    eventually(
        states,
        lambda s: "firing" in s,
        timeout * backend.patience,
        f"{alertname}{labels} firing",
        lambda: backend.logs("prometheus"),
        interval=0.5,
    )
    delivered = eventually(
        lambda: caused_since(backend.delivered(alertname, "firing"), since, labels),
        bool,
        30 * backend.patience,
        f"{alertname} delivered to the webhook",
        lambda: backend.logs("alertmanager"),
    )
    assert delivered[0]["labels"]["namespace"] == backend.namespace
    assert delivered[0]["labels"]["user_id"] == USER
    assert delivered[0]["labels"]["severity"] in ("warning", "critical")
    return seen


def wait_resolved(
    backend: Backend, alertname: str, labels: dict[str, str], since: datetime
) -> None:
    eventually(
        lambda: alert_states(backend, alertname, **labels),
        lambda s: s == [],
        90 * backend.patience,
        f"{alertname}{labels} resolved in Prometheus",
        lambda: backend.logs("prometheus"),
    )
    # Prometheus sends a resolution once; one that is lost (Prometheus drops what it sends
    # in the seconds after a reload) is sent again after its resend delay of 1 minute.
    eventually(
        lambda: caused_since(backend.delivered(alertname, "resolved"), since, labels),
        bool,
        75 * backend.patience,
        f"{alertname} resolution delivered",
        lambda: backend.logs("alertmanager"),
    )
