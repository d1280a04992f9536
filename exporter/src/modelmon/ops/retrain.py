"""The retrain decision, shared by `trigger-retrain --check-drift` and `serve-webhook`.

A retrain is asked for by the quality alerts of rules/alerts.yaml: those labelled
`action: retrain`. Their thresholds are the chart's `rules.alerts.<name>.threshold` values, the one
place they are set; this module only reads what the alerts say (their labels, and their value
and threshold annotations), whether Alertmanager sent them to the webhook or Prometheus lists
them as active for the CLI. Then `act` applies the cooldown and the dry run and dispatches.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from modelmon.contract import (
    ACTION_LABEL,
    MEASURE_LABEL,
    RETRAIN_ACTION,
    THRESHOLD_ANNOTATION,
    USER_LABEL,
    VALUE_ANNOTATION,
    VARIANT_LABEL,
    Measure,
)
from modelmon.ops.cooldown import Cooldown
from modelmon.ops.github import GitHubWorkflow

ACTIVE_STATES = ("firing", "pending")


@dataclass(frozen=True)
class QualityAlert:
    """An active alert that asks for a retrain."""

    name: str
    user: str
    namespace: str | None
    variant: str
    measure: Measure | None
    value: float | None
    threshold: str
    state: str

    def reason(self) -> str:
        value = "?" if self.value is None else f"{self.value:.4f}"
        where = f"{self.name}, {self.variant}" if self.variant else self.name
        if self.measure is None:
            return f"{self.name}({value}) past {self.threshold} [{where}]"
        return (
            f"{self.measure.display}({value}) {self.measure.worse_when} {self.threshold} [{where}]"
        )


def _number(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _measure(text: str | None) -> Measure | None:
    try:
        return Measure(text) if text else None
    except ValueError:
        return None


def retrain_alerts(alerts: Iterable[Any]) -> list[QualityAlert]:
    """The active alerts labelled action=retrain, from Alertmanager's webhook payload (which
    says `status`) or from Prometheus's /api/v1/alerts (which says `state`); others are skipped,
    and so are alerts without a user_id, which no retrain could be asked for."""
    found = []
    for alert in alerts:
        if not isinstance(alert, Mapping):
            continue
        labels = alert.get("labels") or {}
        annotations = alert.get("annotations") or {}
        if not isinstance(labels, Mapping) or not isinstance(annotations, Mapping):
            continue
        state = alert.get("state") or alert.get("status")
        if labels.get(ACTION_LABEL) != RETRAIN_ACTION or state not in ACTIVE_STATES:
            continue
        if not labels.get(USER_LABEL):
            continue
        found.append(
            QualityAlert(
                name=str(labels.get("alertname", "")),
                user=str(labels[USER_LABEL]),
                namespace=labels.get("namespace"),
                variant=str(labels.get(VARIANT_LABEL, "")),
                measure=_measure(labels.get(MEASURE_LABEL)),
                value=_number(annotations.get(VALUE_ANNOTATION, alert.get("value"))),
                threshold=str(annotations.get(THRESHOLD_ANNOTATION, "its threshold")),
                state=str(state),
            )
        )
    return found


def by_user(alerts: Iterable[QualityAlert]) -> dict[str, list[QualityAlert]]:
    grouped: dict[str, list[QualityAlert]] = {}
    for alert in alerts:
        grouped.setdefault(alert.user, []).append(alert)
    return grouped


@dataclass(frozen=True)
class Decision:
    retrain: bool
    reasons: list[str]
    drift_score: float | None  # the largest drift among the alerts, when one judges drift


def decide(alerts: Iterable[QualityAlert]) -> Decision:
    """Retrain when a quality alert is active; the reasons name each one, its value and its
    threshold (the thresholds are the alerts' own, set once in the chart's values)."""
    active = list(alerts)
    drift = [a.value for a in active if a.measure is Measure.DRIFT and a.value is not None]
    if not active:
        return Decision(False, ["no quality alert is active"], None)
    reasons = sorted({alert.reason() for alert in active})
    return Decision(True, reasons, max(drift, default=None))


@dataclass(frozen=True)
class Outcome:
    action: str  # triggered, dry_run, cooldown, not_needed
    message: str


def act(
    decision: Decision,
    user: str,
    *,
    workflow: GitHubWorkflow | None,
    cooldown: Cooldown,
    dry_run: bool,
    force: bool,
    drift_score: float | None = None,
) -> Outcome:
    """The same path for the CLI and the webhook: decide, respect the cooldown, dispatch.
    `drift_score` is what to report when no drift alert is among the reasons."""
    if not decision.retrain and not force:
        return Outcome("not_needed", "no retrain: " + "; ".join(decision.reasons))
    why = "; ".join(decision.reasons) if decision.retrain else "forced"
    rehearsing = dry_run or workflow is None
    kept = cooldown.rehearsal() if rehearsing else cooldown
    remaining = kept.remaining(user)
    if remaining > 0 and not force:
        retrained = "retrained (in this dry run)" if rehearsing else "retrained"
        return Outcome(
            "cooldown",
            f"retrain needed ({why}) but {user} was {retrained} less than "
            f"{cooldown.seconds:g} s ago: next possible in {remaining:.0f} s",
        )
    if dry_run or workflow is None:
        kept.record(user)
        target = workflow.dispatch_url if workflow else "the retrain workflow"
        return Outcome("dry_run", f"retrain needed ({why}); dry run, would dispatch {target}")
    drift = decision.drift_score if decision.drift_score is not None else drift_score
    workflow.dispatch(user, why, drift)
    cooldown.record(user)
    return Outcome(
        "triggered",
        f"retrain triggered ({why}): {workflow.workflow} on {workflow.repo}@{workflow.ref} "
        f"with user_id={user}",
    )
