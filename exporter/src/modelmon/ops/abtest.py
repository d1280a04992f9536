"""A/B comparison of stable and canary from Prometheus counters alone.

Each variant's feedback counters give n, Σ|e| and Σe² over the window; since |e|² = e², they are
the sufficient statistics of the absolute error's mean and variance. Welch's t-test on the mean
absolute error (unequal variances, unequal n) then compares the two models' MAE. Absolute errors
are skewed, so the test leans on the central limit theorem: hence the minimum sample per variant
(default 200) below which no verdict is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

from modelmon.contract import (
    FEEDBACK,
    FEEDBACK_ABSOLUTE_ERROR,
    FEEDBACK_SQUARED_ERROR,
    VARIANT_LABEL,
    Variant,
)
from modelmon.gate.sequential import Sums
from modelmon.ops.prometheus import PrometheusAPI, Scope

COUNTERS = {"n": FEEDBACK, "total": FEEDBACK_ABSOLUTE_ERROR, "squares": FEEDBACK_SQUARED_ERROR}


@dataclass(frozen=True)
class Comparison:
    stable: Sums
    canary: Sums
    p_value: float
    t_statistic: float
    effect_size: float  # Hedges' g of the canary's |e| against stable's; < 0: canary better
    difference: float  # canary MAE − stable MAE
    ci_low: float
    ci_high: float
    alpha: float

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha

    @property
    def verdict(self) -> str:
        if not self.significant:
            return "no significant difference"
        return "canary better" if self.difference < 0 else "canary worse"


class InsufficientSample(Exception):
    def __init__(self, counts: dict[str, float], minimum: int) -> None:
        self.counts = counts
        self.minimum = minimum
        shown = ", ".join(f"{v} {n:.0f}" for v, n in counts.items())
        super().__init__(f"too few feedback samples for a verdict ({shown}; need {minimum} each)")


def compare(stable: Sums, canary: Sums, alpha: float = 0.05) -> Comparison:
    s_sd, c_sd = math.sqrt(stable.variance), math.sqrt(canary.variance)
    result = stats.ttest_ind_from_stats(
        canary.mean, c_sd, canary.n, stable.mean, s_sd, stable.n, equal_var=False
    )
    difference = canary.mean - stable.mean
    se2_c, se2_s = canary.variance / canary.n, stable.variance / stable.n
    standard_error = math.sqrt(se2_c + se2_s)
    dof = (
        (se2_c + se2_s) ** 2 / (se2_c**2 / (canary.n - 1) + se2_s**2 / (stable.n - 1))
        if standard_error > 0
        else canary.n + stable.n - 2
    )
    margin = float(stats.t.ppf(1 - alpha / 2, dof)) * standard_error
    pooled = math.sqrt(
        ((canary.n - 1) * canary.variance + (stable.n - 1) * stable.variance)
        / (canary.n + stable.n - 2)
    )
    correction = 1 - 3 / (4 * (canary.n + stable.n) - 9)
    effect = difference / pooled * correction if pooled > 0 else 0.0
    p_value = float(result.pvalue) if math.isfinite(result.pvalue) else 1.0
    return Comparison(
        stable,
        canary,
        p_value,
        float(result.statistic) if math.isfinite(result.statistic) else 0.0,
        effect,
        difference,
        difference - margin,
        difference + margin,
        alpha,
    )


def read_sums(api: PrometheusAPI, scope: Scope, window: str) -> dict[str, Sums]:
    values = {
        name: api.by_label(
            f"sum by ({VARIANT_LABEL}) (increase({metric}{{{scope.matchers()}}}[{window}]))",
            VARIANT_LABEL,
        )
        for name, metric in COUNTERS.items()
    }
    return {
        variant: Sums(n, values["total"].get(variant, 0.0), values["squares"].get(variant, 0.0))
        for variant, n in values["n"].items()
    }


def compare_from_prometheus(
    api: PrometheusAPI, scope: Scope, window: str, minimum: int, alpha: float
) -> Comparison:
    sums = read_sums(api, scope, window)
    counts = {str(v): sums[v].n if v in sums else 0.0 for v in (Variant.STABLE, Variant.CANARY)}
    if round(min(counts.values())) < max(minimum, 2):
        raise InsufficientSample(counts, minimum)
    return compare(sums[Variant.STABLE], sums[Variant.CANARY], alpha)


def format_comparison(comparison: Comparison) -> list[str]:
    c = comparison
    return [
        f"  {'variant':<8} {'n':>8} {'MAE':>8} {'sd(|e|)':>8}",
        *(
            f"  {name:<8} {sums.n:>8.0f} {sums.mean:>8.4f} {math.sqrt(sums.variance):>8.4f}"
            for name, sums in ((Variant.STABLE, c.stable), (Variant.CANARY, c.canary))
        ),
        f"  MAE difference (canary − stable): {c.difference:+.4f}, "
        f"{100 * (1 - c.alpha):.0f}% CI [{c.ci_low:+.4f}, {c.ci_high:+.4f}]",
        f"  Welch's t = {c.t_statistic:.3f}, p = {c.p_value:.3g}; effect size (Hedges' g) "
        f"{c.effect_size:+.3f}",
        f"verdict: {c.verdict} (α = {c.alpha:g})",
    ]
