"""Drift per feature, now and over the range, against the drift alert's threshold."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from modelmon.contract import (
    FEATURE_DRIFT_SCORE,
    MEASURE_LABEL,
    THRESHOLD_ANNOTATION,
    VARIANT_LABEL,
    Measure,
)
from modelmon.ops.prometheus import PrometheusAPI, Scope
from modelmon.ops.readings import (
    in_variant_order,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure
from modelmon.ops.report.figures import Window, new_figure, no_data, series_times
from modelmon.ops.report.page import Block, Table, Text

FEATURE_LABEL = FEATURE_DRIFT_SCORE.labels[-1]


def drift_threshold(api: PrometheusAPI, scope: Scope) -> float | None:
    """The drift alert's threshold for this user, as Prometheus loaded the rule (the chart's
    rules.alerts value), or None when no rule of the user judges drift."""
    for rule in api.alert_rules():
        labels = rule.get("labels", {})
        if scope.owns(labels) and labels.get(MEASURE_LABEL) == Measure.DRIFT:
            try:
                return float(rule.get("annotations", {}).get(THRESHOLD_ANNOTATION, ""))
            except ValueError:
                return None
    return None


def _natural(text: str) -> tuple[str, int]:
    number = re.search(r"\d+$", text)
    return (text[: number.start()], int(number[0])) if number else (text, -1)


def feature_drift(api: PrometheusAPI, scope: Scope) -> dict[str, dict[str, float]]:
    """Each feature's drift score now, per variant: {feature: {variant: PSI}}."""
    promql = (
        f"max by ({VARIANT_LABEL}, {FEATURE_LABEL}) ({FEATURE_DRIFT_SCORE}{{{scope.matchers()}}})"
    )
    scores: dict[str, dict[str, float]] = {}
    for sample in api.query(promql):
        feature = sample.labels.get(FEATURE_LABEL, "")
        scores.setdefault(feature, {})[sample.labels.get(VARIANT_LABEL, "")] = sample.value
    return {feature: scores[feature] for feature in sorted(scores, key=_natural)}


def drift_table(scores: dict[str, dict[str, float]], threshold: float | None) -> Table:
    """A row per feature, a column per variant; a score above the threshold says so."""
    variants = in_variant_order(v for per in scores.values() for v in per)

    def cell(score: float | None) -> str:
        if score is None:
            return "-"
        over = threshold is not None and score > threshold
        return f"{score:.3f}" + (" over" if over else "")

    rows = tuple(
        (feature, *(cell(per.get(variant)) for variant in variants))
        for feature, per in scores.items()
    )
    return Table(("feature", *variants), rows, (False, *(True for _ in variants)))


def features_over(scores: dict[str, dict[str, float]], threshold: float | None) -> list[str]:
    """The features whose drift is above the threshold for some variant."""
    if threshold is None:
        return []
    return [feature for feature, per in scores.items() if max(per.values()) > threshold]


def drift_figure(api: PrometheusAPI, window: Window, threshold: float | None) -> Figure:
    """Each feature's drift score over the window, one plot per variant, with the drift alert's
    threshold drawn across."""
    by = f"{VARIANT_LABEL}, {FEATURE_LABEL}"
    promql = f"max by ({by}) ({FEATURE_DRIFT_SCORE}{{{window.scope.matchers()}}})"
    found = api.query_range(promql, window.start, window.end, window.step)
    variants = in_variant_order(s.labels.get(VARIANT_LABEL, "") for s in found) or ["-"]
    figure = new_figure(10, 2.8 * len(variants) + 0.6)
    grid = figure.subplots(len(variants), 1, sharex=True, squeeze=False)
    for axes, variant in zip(grid[:, 0], variants, strict=True):
        mine = [s for s in found if s.labels.get(VARIANT_LABEL, "") == variant]
        mine.sort(key=lambda s: _natural(s.labels.get(FEATURE_LABEL, "")))
        for series in mine:
            values = [v for _t, v in series.points]
            axes.plot(series_times(series), values, label=series.labels.get(FEATURE_LABEL, ""))
        if threshold is not None:
            axes.axhline(threshold, color="red", linestyle="--", label=f"threshold {threshold:g}")
        if not mine:
            no_data(axes)
        axes.set_title(f"Input drift per feature: {variant}", fontsize="medium", loc="left")
        axes.set_ylabel("PSI")
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", ncol=2)
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


def drift_blocks(api: PrometheusAPI, scope: Scope) -> list[Block]:
    """The drift now: the worst features per variant, and every feature against the threshold."""
    scores = feature_drift(api, scope)
    if not scores:
        return [
            Text(
                "No drift scores in Prometheus yet (the exporter scores drift once it has inputs)."
            )
        ]
    variants: dict[str, list[tuple[float, str]]] = {}
    for feature, per in scores.items():
        for variant, score in per.items():
            variants.setdefault(variant, []).append((score, feature))
    rows = []
    for variant in in_variant_order(variants):
        ranked = sorted(variants[variant], reverse=True)
        top = ", ".join(f"{feature} {score:.3f}" for score, feature in ranked[:3])
        rows.append((variant, f"{ranked[0][0]:.3f}", top))
    threshold = drift_threshold(api, scope)
    over = features_over(scores, threshold)
    verdict = (
        "no drift alert rule for this user"
        if threshold is None
        else f"the drift alert's threshold is {threshold:g}; over it: {', '.join(over) or 'none'}"
    )
    return [
        Table(("variant", "overall (max PSI)", "top features"), tuple(rows), (False, True)),
        Text("PSI below 0.1: no shift; 0.1 to 0.25: moderate; above 0.25: significant."),
        Text(f"Every feature ({verdict}):"),
        drift_table(scores, threshold),
    ]
