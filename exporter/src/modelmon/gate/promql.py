"""The gate as PromQL: the one place its queries are written.

`modelmon-ops promote` reads each variant's state with the part queries below and judges it in
Python (modelmon.gate.decision.judge). Argo Rollouts and Flagger cannot run Python, so the chart
gives them `verdict_query`, the same judgement as one PromQL expression that yields 1 (promote),
0 (hold) or -1 (roll back). The chart's copy is generated from here (`make gate-query`) with
Helm placeholders for the values, and the tests check that both agree with `judge` on the same
counters.

Every part is a `sum(...)` without `by`, so parts combine one-to-one, and a comparison that does
not hold yields nothing, which `and`/`or` turn into the verdict.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from modelmon.contract import (
    DRIFT_SCORE,
    FEEDBACK,
    FEEDBACK_ABSOLUTE_ERROR,
    FEEDBACK_SQUARED_ERROR,
    PREDICTION_ERRORS,
    PREDICTION_LATENCY,
    PREDICTION_OUTPUT_NEGATIVE,
    PREDICTION_OUTPUT_POSITIVE,
    PREDICTION_OUTPUT_SQUARED,
    PREDICTIONS,
    VARIANT_LABEL,
    Metric,
    Variant,
)
from modelmon.gate.decision import GatePolicy
from modelmon.gate.sequential import MIN_VARIANCE

LATENCY_QUANTILE = 0.95
# PromQL refuses `offset 0s`: a zero delay is no offset at all.
ZERO_DURATION = re.compile(r"0+[a-z]*")
# Where the chart keeps its copy of verdict_query (make gate-query writes it).
CHART_COPY = "files/gate-verdict.promql"


@dataclass(frozen=True)
class QueryParams:
    """The values a query is built from, as they appear in it: numbers for Prometheus, or Helm
    placeholders for the chart's copy."""

    matchers: str  # e.g. user_id="user07",namespace="kubeflow-user07"
    window: str  # a PromQL duration: the counters' increase over it is "since the canary started"
    labellable_offset: str  # " offset 5m", or "" when labels come at once
    alpha: str
    mixture_sd: str
    min_feedback: str
    min_coverage: str
    non_inferiority: str
    max_error_ratio: str
    max_latency_p95_seconds: str
    max_drift_gap: str
    max_prediction_shift: str

    @classmethod
    def of(cls, matchers: str, window: str, label_delay: str, policy: GatePolicy) -> QueryParams:
        """`window` and `label_delay` are PromQL durations (e.g. 1h, 30m, 0s)."""
        values = {
            field.name: repr(getattr(policy, field.name)) for field in dataclasses.fields(policy)
        }
        return cls(
            matchers=matchers,
            window=window,
            labellable_offset=(
                "" if ZERO_DURATION.fullmatch(label_delay) else f" offset {label_delay}"
            ),
            **values,
        )

    @classmethod
    def helm_placeholders(cls) -> QueryParams:
        """The chart's copy: each value a field of the `.gate` dict the chart passes to `tpl`."""
        names = [field.name for field in dataclasses.fields(cls)]
        return cls(**{name: "{{ .gate." + values_key(name) + " }}" for name in names})


def values_key(name: str) -> str:
    """The chart's name for a setting: min_feedback -> minFeedback."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


class VariantQueries:
    """The part queries of one variant: each yields one label-less sample."""

    def __init__(self, params: QueryParams, variant: Variant) -> None:
        self._params = params
        # after a space: in the chart's copy, "{{{" would open a Go template action
        self._selector = f'{params.matchers},{VARIANT_LABEL}="{variant}"'

    def _increase(self, metric: Metric | str, offset: str = "") -> str:
        window = f"[{self._params.window}]{offset}"
        return f"(sum(increase({metric}{{ {self._selector}}}{window})) or vector(0))"

    @property
    def predictions(self) -> str:
        return self._increase(PREDICTIONS)

    @property
    def labellable(self) -> str:
        """Predictions old enough to have their ground truth: served one label delay ago."""
        return self._increase(PREDICTIONS, self._params.labellable_offset)

    @property
    def errors(self) -> str:
        return self._increase(PREDICTION_ERRORS)

    @property
    def feedback(self) -> str:
        return self._increase(FEEDBACK)

    @property
    def absolute_error(self) -> str:
        return self._increase(FEEDBACK_ABSOLUTE_ERROR)

    @property
    def squared_error(self) -> str:
        return self._increase(FEEDBACK_SQUARED_ERROR)

    @property
    def latency_p95_seconds(self) -> str:
        buckets = f"{PREDICTION_LATENCY}_bucket{{ {self._selector}}}[{self._params.window}]"
        return f"histogram_quantile({LATENCY_QUANTILE}, sum by (le) (rate({buckets})))"

    @property
    def drift_score(self) -> str:
        return f"max({DRIFT_SCORE}{{ {self._selector}}})"

    @property
    def error_ratio(self) -> str:
        return f"({self.errors} / ({self.errors} + {self.predictions}))"

    @property
    def coverage(self) -> str:
        """Empty while nothing is labellable yet (the gate's coverage 0)."""
        return f"clamp_max({self.feedback} / ({self.labellable} > 0), 1)"

    @property
    def mean(self) -> str:
        return f"({self.absolute_error} / {self.feedback})"

    @property
    def variance_of_mean(self) -> str:
        """s² / n of the absolute error."""
        n = self.feedback
        return f"({_sample_variance(n, self.mean, self.squared_error)} / {n})"

    @property
    def output_total(self) -> str:
        """Σŷ of the predicted values."""
        positive, negative = PREDICTION_OUTPUT_POSITIVE, PREDICTION_OUTPUT_NEGATIVE
        return f"({self._increase(positive)} - {self._increase(negative)})"

    @property
    def output_squared(self) -> str:
        return self._increase(PREDICTION_OUTPUT_SQUARED)

    @property
    def output_mean(self) -> str:
        return f"({self.output_total} / {self.predictions})"

    @property
    def output_variance(self) -> str:
        return _sample_variance(self.predictions, self.output_mean, self.output_squared)

    @property
    def output_variance_of_mean(self) -> str:
        return f"({self.output_variance} / {self.predictions})"

    def enough_feedback(self) -> str:
        p = self._params
        return f"({self.feedback} >= {p.min_feedback}) and ({self.coverage} >= {p.min_coverage})"


def _sample_variance(n: str, mean: str, squares: str) -> str:
    """s² = (Σx² − n·mean²) / (n − 1), at least 0."""
    return f"clamp_min(({squares} - {n} * {mean} ^ 2) / ({n} - 1), 0)"


def _half_width(variance_of_difference: str, params: QueryParams) -> str:
    """modelmon.gate.sequential.half_width, for the difference of two means."""
    variance = f"clamp_min({variance_of_difference}, {MIN_VARIANCE!r})"
    tau2 = f"({params.mixture_sd} ^ 2)"
    return (
        f"sqrt(2 * {variance} * ({variance} + {tau2}) / {tau2} * "
        f"ln(sqrt(({variance} + {tau2}) / {variance}) / {params.alpha}))"
    )


def verdict_query(params: QueryParams) -> str:
    """1 promote, 0 hold, -1 roll back: `judge` in PromQL."""
    stable, canary = VariantQueries(params, Variant.STABLE), VariantQueries(params, Variant.CANARY)
    p = params
    serving_problem = " or ".join(
        (
            f"({canary.error_ratio} > {p.max_error_ratio})",
            f"({canary.latency_p95_seconds} > {p.max_latency_p95_seconds})",
            f"(({canary.drift_score} - {stable.drift_score}) > {p.max_drift_gap})",
        )
    )
    judged = f"({stable.enough_feedback()} and {canary.enough_feedback()})"
    half_width = _half_width(f"{canary.variance_of_mean} + {stable.variance_of_mean}", p)
    difference = f"({canary.mean} - {stable.mean})"
    worse = f"({judged} and (({difference} - {half_width}) > 0))"
    not_worse = f"({judged} and (({difference} + {half_width}) <= {p.non_inferiority}))"
    shift_width = _half_width(
        f"{canary.output_variance_of_mean} + {stable.output_variance_of_mean}", p
    )
    tolerance = f"({p.max_prediction_shift} * sqrt({stable.output_variance}))"
    moved = f"((abs({canary.output_mean} - {stable.output_mean}) - {shift_width}) > {tolerance})"
    moved_before_labels = f"({moved} unless on() {judged})"
    return (
        f"(vector(-1) and on() ({serving_problem} or {worse} or {moved_before_labels}))\n"
        f"or (vector(1) and on() {not_worse})\n"
        "or vector(0)"
    )


def chart_copy() -> str:
    """What the chart's CHART_COPY holds: the verdict with Helm placeholders."""
    header = (
        "{{- /* Generated by `make gate-query` from modelmon.gate.promql.verdict_query: do not "
        "edit. */ -}}\n"
    )
    return header + verdict_query(QueryParams.helm_placeholders()) + "\n"


def main() -> None:
    """Writes the chart's copy: python -m modelmon.gate.promql CHART_DIR."""
    import sys
    from pathlib import Path

    (Path(sys.argv[1]) / CHART_COPY).write_text(chart_copy())


if __name__ == "__main__":
    main()
