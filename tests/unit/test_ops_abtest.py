"""The A/B test from sufficient statistics must equal the test on the raw errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from modelmon.gate.sequential import Sums
from modelmon.ops.abtest import compare


def sums_of(errors: np.ndarray) -> Sums:
    return Sums(float(len(errors)), float(np.abs(errors).sum()), float((errors**2).sum()))


@pytest.mark.parametrize(("stable_scale", "canary_scale"), [(0.25, 0.20), (0.2, 0.2), (0.2, 0.3)])
def test_welch_from_counters_equals_welch_on_the_raw_absolute_errors(
    stable_scale: float, canary_scale: float
) -> None:
    rng = np.random.default_rng(5)
    stable = rng.normal(0, stable_scale, 700)
    canary = rng.normal(0, canary_scale, 400)
    comparison = compare(sums_of(stable), sums_of(canary))
    raw = stats.ttest_ind(np.abs(canary), np.abs(stable), equal_var=False)
    assert comparison.p_value == pytest.approx(raw.pvalue, rel=1e-6)
    assert comparison.t_statistic == pytest.approx(raw.statistic, rel=1e-6)
    assert comparison.difference == pytest.approx(
        np.abs(canary).mean() - np.abs(stable).mean(), rel=1e-9
    )
    assert comparison.ci_low < comparison.difference < comparison.ci_high


def test_the_verdict_follows_the_sign_and_the_significance() -> None:
    rng = np.random.default_rng(6)
    good, bad = rng.normal(0, 0.2, 500), rng.normal(0, 0.3, 500)
    assert compare(sums_of(bad), sums_of(good)).verdict == "canary better"
    assert compare(sums_of(good), sums_of(bad)).verdict == "canary worse"
    same = compare(sums_of(good[:250]), sums_of(good[250:]))
    assert same.verdict == "no significant difference"
    assert same.ci_low < 0 < same.ci_high


def test_effect_size_is_hedges_g_of_the_absolute_errors() -> None:
    rng = np.random.default_rng(7)
    stable, canary = np.abs(rng.normal(0, 0.25, 300)), np.abs(rng.normal(0, 0.2, 200))
    n1, n2 = len(canary), len(stable)
    pooled = np.sqrt(
        ((n1 - 1) * canary.var(ddof=1) + (n2 - 1) * stable.var(ddof=1)) / (n1 + n2 - 2)
    )
    expected = (canary.mean() - stable.mean()) / pooled * (1 - 3 / (4 * (n1 + n2) - 9))
    assert compare(sums_of(stable), sums_of(canary)).effect_size == pytest.approx(
        expected, rel=1e-9
    )
