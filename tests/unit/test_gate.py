"""The canary gate: its confidence sequence keeps its promise when checked every minute, it waits
for ground truth, and it rolls back on what is known at once."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from modelmon.gate.decision import GatePolicy, VariantState, Verdict, judge
from modelmon.gate.sequential import Sums, difference, half_width

POLICY = GatePolicy()
CHECKS = 60  # one check a minute for an hour
LABELS_PER_CHECK = 40  # per variant
PROMOTIONS = 400


def cumulative_sums(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per promotion and check: n, Σ|e|, Σe² of every label received so far."""
    absolute = np.abs(errors)
    per_check = absolute.reshape(errors.shape[0], CHECKS, LABELS_PER_CHECK)
    n = np.arange(1, CHECKS + 1) * LABELS_PER_CHECK
    return n, per_check.sum(axis=2).cumsum(axis=1), (per_check**2).sum(axis=2).cumsum(axis=1)


def simulate(canary_scale: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Absolute errors of stable (scale 0.3) and canary, for PROMOTIONS promotions."""
    rng = np.random.default_rng(seed)
    shape = (PROMOTIONS, CHECKS * LABELS_PER_CHECK)
    return rng.normal(0, 0.3, shape), rng.normal(0, canary_scale, shape)


def state(n: float, total: float, squares: float) -> VariantState:
    return VariantState(
        predictions=n, labellable=n, errors=0, absolute_errors=Sums(n, total, squares)
    )


def first_rollback(stable_errors: np.ndarray, canary_errors: np.ndarray) -> list[int | None]:
    """The check at which the gate first says roll back, per promotion (None: never)."""
    n, stable_total, stable_squares = cumulative_sums(stable_errors)
    _, canary_total, canary_squares = cumulative_sums(canary_errors)
    found: list[int | None] = []
    for promotion in range(PROMOTIONS):
        check_of_rollback = None
        for check in range(CHECKS):
            decision = judge(
                state(n[check], stable_total[promotion, check], stable_squares[promotion, check]),
                state(n[check], canary_total[promotion, check], canary_squares[promotion, check]),
                POLICY,
            )
            if decision.verdict is Verdict.ROLLBACK:
                check_of_rollback = check
                break
        found.append(check_of_rollback)
    return found


def not_above(successes: int, trials: int, p: float) -> bool:
    """The observed rate is not significantly above p (one-sided binomial test at 0.1 %)."""
    return stats.binomtest(successes, trials, p, alternative="greater").pvalue > 0.001


def test_checked_every_minute_an_equal_canary_is_rolled_back_at_most_alpha_of_the_time():
    rollbacks = [c for c in first_rollback(*simulate(0.3, seed=1)) if c is not None]
    assert not_above(len(rollbacks), PROMOTIONS, POLICY.alpha), f"{len(rollbacks)}/{PROMOTIONS}"


def test_a_fixed_horizon_welch_test_rerun_every_minute_would_roll_back_far_more_often():
    """The anchor: the test the gate replaces, re-run at every check, breaks its own α."""
    stable_errors, canary_errors = simulate(0.3, seed=1)
    n, stable_total, stable_squares = cumulative_sums(stable_errors)
    _, canary_total, canary_squares = cumulative_sums(canary_errors)
    rolled_back = 0
    for p in range(PROMOTIONS):
        for check in range(CHECKS):
            stable = Sums(n[check], stable_total[p, check], stable_squares[p, check])
            canary = Sums(n[check], canary_total[p, check], canary_squares[p, check])
            test = stats.ttest_ind_from_stats(
                canary.mean, math.sqrt(canary.variance), canary.n,
                stable.mean, math.sqrt(stable.variance), stable.n,
                equal_var=False, alternative="greater",
            )  # fmt: skip
            if check * LABELS_PER_CHECK >= POLICY.min_feedback and test.pvalue < POLICY.alpha:
                rolled_back += 1
                break
    assert rolled_back > 2 * POLICY.alpha * PROMOTIONS, f"{rolled_back}/{PROMOTIONS}"


def test_a_canary_half_again_as_bad_is_rolled_back_in_nearly_every_promotion():
    found = first_rollback(*simulate(0.45, seed=2))
    caught = [c for c in found if c is not None]
    assert len(caught) >= 0.95 * PROMOTIONS, f"{len(caught)}/{PROMOTIONS}"


def test_quality_is_not_judged_before_coverage_and_a_minimum_sample():
    good = state(1000, 200, 60)
    few_labels = VariantState(
        predictions=1000, labellable=1000, errors=0, absolute_errors=Sums(100, 20, 6)
    )
    late_labels = VariantState(
        predictions=5000, labellable=4000, errors=0, absolute_errors=Sums(1000, 300, 120)
    )
    for canary in (few_labels, late_labels):
        decision = judge(good, canary, POLICY)
        assert decision.verdict is Verdict.HOLD
        assert "quality not judged yet" in decision.line()
    assert "coverage 25% of 50%" in judge(good, late_labels, POLICY).line()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"errors": 50.0}, "error ratio 4.76% > 1.00%"),
        ({"latency_p95_seconds": 0.9}, "p95 latency 900 ms > 500 ms"),
        ({"drift_score": 0.6}, "PSI 0.60 vs 0.05"),
    ],
)
def test_serving_problems_roll_back_before_any_label_arrives(change, reason):
    stable = VariantState(
        predictions=1000, labellable=0, errors=0, absolute_errors=Sums(0, 0, 0), drift_score=0.05
    )
    fields = {"predictions": 1000.0, "labellable": 0.0, "errors": 0.0, "drift_score": 0.05}
    canary = VariantState(**{**fields, **change}, absolute_errors=Sums(0, 0, 0))
    decision = judge(stable, canary, POLICY)
    assert decision.verdict is Verdict.ROLLBACK
    assert reason in decision.line()


def test_the_interval_narrows_as_labels_arrive_and_is_unbounded_without_two_of_each():
    widths = [half_width(0.09 / n * 2, 0.05, 0.05) for n in (100, 1000, 10000)]
    assert widths == sorted(widths, reverse=True)
    assert math.isinf(difference(Sums(1, 0.2, 0.04), Sums(50, 10, 3), 0.05, 0.05).high)


def test_a_clearly_better_canary_is_promoted_with_its_numbers_in_the_reason():
    stable = state(2000, 2000 * 0.30, 2000 * 0.15)
    canary = state(2000, 2000 * 0.20, 2000 * 0.07)
    decision = judge(stable, canary, POLICY)
    assert decision.verdict is Verdict.PROMOTE
    assert "-0.1000" in decision.line()
    assert "α=0.05" in decision.line()


def first_rollback_before_labels(shift_in_sd: float, seed: int) -> list[int | None]:
    """Predicted values of stable N(2, 1) and canary N(2 + shift, 1), LABELS_PER_CHECK of each
    a minute, no label yet: the check at which the gate first rolls back, per promotion."""
    rng = np.random.default_rng(seed)
    shape = (PROMOTIONS, CHECKS, LABELS_PER_CHECK)
    stable, canary = rng.normal(2.0, 1.0, shape), rng.normal(2.0 + shift_in_sd, 1.0, shape)
    n = np.arange(1, CHECKS + 1) * LABELS_PER_CHECK

    def sums(values: np.ndarray, promotion: int, check: int) -> Sums:
        seen = values[promotion, : check + 1]
        return Sums(float(n[check]), float(seen.sum()), float((seen**2).sum()))

    found: list[int | None] = []
    for promotion in range(PROMOTIONS):
        check_of_rollback = None
        for check in range(CHECKS):
            unlabelled = Sums(0.0, 0.0, 0.0)
            decision = judge(
                VariantState(
                    n[check], n[check], 0, unlabelled, 0.01, 0.05, sums(stable, promotion, check)
                ),
                VariantState(
                    n[check], n[check], 0, unlabelled, 0.01, 0.05, sums(canary, promotion, check)
                ),
                POLICY,
            )
            if decision.verdict is Verdict.ROLLBACK:
                assert decision.reasons[0].startswith("canary predictions moved"), decision.line()
                check_of_rollback = check
                break
        found.append(check_of_rollback)
    return found


def test_before_labels_an_equal_canarys_predictions_roll_it_back_at_most_alpha_of_the_time():
    rolled_back = sum(check is not None for check in first_rollback_before_labels(0.0, seed=11))
    assert not_above(rolled_back, PROMOTIONS, POLICY.alpha), rolled_back


def test_before_labels_predictions_moved_a_whole_sd_are_rolled_back_within_minutes():
    checks = first_rollback_before_labels(1.0, seed=12)
    caught = [check for check in checks if check is not None]
    assert len(caught) == PROMOTIONS
    assert float(np.median(caught)) <= 6  # 280 predictions of each
    assert max(caught) < 15


def test_within_the_tolerance_a_moved_prediction_mean_is_no_reason_to_roll_back():
    assert all(check is None for check in first_rollback_before_labels(0.3, seed=13))
