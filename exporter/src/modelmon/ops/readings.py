"""What Prometheus says about one user's model now: quality per variant and the alert rules."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from modelmon.contract import DRIFT_SCORE, VARIANT_LABEL, VARIANTS, RecordingRule
from modelmon.ops.prometheus import PrometheusAPI, Scope


def in_variant_order(names: Iterable[str]) -> list[str]:
    """Variant names as the contract orders them (stable, canary), any others after, sorted."""
    seen = set(names)
    known = [str(v) for v in VARIANTS]
    return [v for v in known if v in seen] + sorted(seen - set(known))


@dataclass(frozen=True)
class Quality:
    """Quality per variant over the rules' window (the recording rules the alerts use), and the
    drift score; a variant Prometheus has no value for is missing from the dict."""

    mae: dict[str, float]
    r2: dict[str, float]
    accuracy: dict[str, float]
    drift: dict[str, float]

    def variants(self) -> list[str]:
        return in_variant_order({*self.mae, *self.r2, *self.accuracy, *self.drift})

    def worst(self) -> dict[str, float]:
        """The worst value of each measure over the variants (what a retrain decision needs)."""
        worst: dict[str, float] = {}
        if self.mae:
            worst["mae"] = max(self.mae.values())
        if self.r2:
            worst["r2"] = min(self.r2.values())
        if self.accuracy:
            worst["accuracy"] = min(self.accuracy.values())
        if self.drift:
            worst["drift"] = max(self.drift.values())
        return worst


def _finite(values: dict[str, float]) -> dict[str, float]:
    return {key: value for key, value in values.items() if math.isfinite(value)}


def read_quality(api: PrometheusAPI, scope: Scope) -> Quality:
    selector = "{" + scope.matchers() + "}"

    def per_variant(series: str) -> dict[str, float]:
        promql = f"max by ({VARIANT_LABEL}) ({series}{selector})"
        return _finite(api.by_label(promql, VARIANT_LABEL))

    return Quality(
        mae=per_variant(RecordingRule.MAE),
        r2=per_variant(RecordingRule.R2),
        accuracy=per_variant(RecordingRule.ACCURACY),
        drift=per_variant(DRIFT_SCORE.name),
    )


def format_quality(quality: Quality) -> list[str]:
    if not quality.variants():
        return ["  no quality data yet (has feedback reached the model in the rules' window?)"]

    def cell(values: dict[str, float], variant: str) -> str:
        return f"{values[variant]:.4f}" if variant in values else "-"

    lines = [f"  {'variant':<8} {'MAE':>8} {'R²':>8} {'accuracy':>9} {'drift':>8}"]
    for variant in quality.variants():
        lines.append(
            f"  {variant:<8} {cell(quality.mae, variant):>8} {cell(quality.r2, variant):>8} "
            f"{cell(quality.accuracy, variant):>9} {cell(quality.drift, variant):>8}"
        )
    return lines


@dataclass(frozen=True)
class AlertCondition:
    name: str
    severity: str
    for_seconds: float
    state: str  # inactive, pending or firing, for this user
    met_by: list[dict[str, str]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # the rule's own

    @property
    def met(self) -> bool:
        return bool(self.met_by)


def alert_conditions(api: PrometheusAPI, scope: Scope) -> list[AlertCondition]:
    """Each of the user's alert rules, with its expression evaluated now: `met` says the condition
    holds this instant, `state` what Prometheus made of it so far (the `for` clause)."""
    conditions = []
    for rule in api.alert_rules():
        if not scope.owns(rule.get("labels", {})):
            continue
        met_by = [s.labels for s in api.query(rule["query"]) if scope.owns(s.labels)]
        states = {a["state"] for a in rule.get("alerts", []) if scope.owns(a["labels"])}
        state = next((s for s in ("firing", "pending") if s in states), "inactive")
        conditions.append(
            AlertCondition(
                rule["name"],
                rule.get("labels", {}).get("severity", ""),
                float(rule.get("duration", 0)),
                state,
                met_by,
                dict(rule.get("labels", {})),
            )
        )
    return conditions


def format_conditions(conditions: list[AlertCondition]) -> list[str]:
    if not conditions:
        return ["  no alert rules for this user in Prometheus (are the chart's rules loaded?)"]
    lines = []
    for condition in conditions:
        if condition.met:
            variants = {labels.get(VARIANT_LABEL, "") for labels in condition.met_by}
            where = ", ".join(sorted(variants))
            verdict = f"condition MET ({where or 'all'}), alert {condition.state}"
            if condition.state != "firing":
                verdict += f"; fires once it holds for {condition.for_seconds:g} s"
        else:
            verdict = f"condition not met, alert {condition.state}"
        lines.append(f"  {condition.name:<26} {verdict}")
    return lines
