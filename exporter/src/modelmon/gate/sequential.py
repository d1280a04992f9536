"""Anytime-valid comparison of two means from running sums: the mixture sequential probability
ratio test (mSPRT) of Robbins (1970), as Johari, Pekelis and Walsh use it for A/B tests that are
checked continuously ("Always valid inference", Operations Research 2022).

For each variant the exporter's counters give n, Σx and Σx² of the absolute error x = |truth −
prediction| (Σx² = Σe²). The canary's mean minus stable's, D, is asymptotically normal with
variance V = s²_canary / n_canary + s²_stable / n_stable. Mixing the likelihood ratio of D over a
normal prior N(0, τ²) on the true difference gives a martingale under "no difference"; Ville's
inequality bounds the chance that it ever exceeds 1/α by α. Inverted, that is a confidence
sequence: the interval

    D ± sqrt( 2 V (V + τ²) / τ² · ln( sqrt((V + τ²) / V) / α ) )

holds the true difference at every check at once with probability ≥ 1 − α, however often it is
looked at. τ is the size of difference the test is tuned to find quickest; any τ keeps the
guarantee.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Below this many samples a variance estimate is not a variance.
MIN_SAMPLES = 2
# Identical constant errors have no variance: the interval is then a point, not a division by 0.
MIN_VARIANCE = 1e-12


@dataclass(frozen=True)
class Sums:
    """n, Σx and Σx² of one variant's samples."""

    n: float
    total: float
    squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """The sample variance, (Σx² − n·mean²) / (n − 1)."""
        if self.n < MIN_SAMPLES:
            return math.nan
        return max(0.0, (self.squares - self.n * self.mean**2) / (self.n - 1))

    def __sub__(self, earlier: Sums) -> Sums:
        """The samples added since `earlier` (counters only grow)."""
        return Sums(self.n - earlier.n, self.total - earlier.total, self.squares - earlier.squares)


@dataclass(frozen=True)
class Interval:
    """The canary's mean minus stable's, and the confidence sequence around it."""

    estimate: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.estimate:+.4f} [{self.low:+.4f}, {self.high:+.4f}]"


def half_width(variance: float, alpha: float, mixture_sd: float) -> float:
    """Half the width of the mSPRT confidence sequence for an estimate of this variance."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be within (0, 1), got {alpha}")
    if mixture_sd <= 0:
        raise ValueError(f"mixture_sd must be positive, got {mixture_sd}")
    if math.isnan(variance):
        return math.inf
    variance = max(variance, MIN_VARIANCE)
    tau2 = mixture_sd**2
    growth = math.log(math.sqrt((variance + tau2) / variance) / alpha)
    return math.sqrt(2 * variance * (variance + tau2) / tau2 * growth)


def difference(stable: Sums, canary: Sums, alpha: float, mixture_sd: float) -> Interval:
    """Canary mean − stable mean with its (1 − α) confidence sequence; infinite while either
    variant has fewer than two samples."""
    estimate = canary.mean - stable.mean
    if min(stable.n, canary.n) < MIN_SAMPLES:
        return Interval(estimate, -math.inf, math.inf)
    variance = canary.variance / canary.n + stable.variance / stable.n
    width = half_width(variance, alpha, mixture_sd)
    return Interval(estimate, estimate - width, estimate + width)
