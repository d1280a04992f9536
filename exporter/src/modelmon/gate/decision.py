"""Promote, hold or roll back: the canary judged against stable, with the reasons in one line.

Ground truth comes late, so the canary's quality is unknown for a while after it starts serving.
Until enough of each variant's predictions have their truth (coverage, against the predictions
old enough to have it, i.e. served at least one label delay ago) and a minimum sample is in, the
gate judges only what is known at once: the canary's error ratio, its latency, whether its
inputs drift from stable's, and whether its predictions moved away from stable's (the same
traffic, split at random, should get predictions of about the same mean from two models of
about the same quality). Then it compares the mean absolute errors with an anytime-valid
confidence sequence (modelmon.gate.sequential), so it may be asked every minute while the chance
of a false rollback stays at most α. Labels outrank the proxy: once quality is judged, a shift
in the predictions no longer rolls back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from modelmon.contract import Variant
from modelmon.gate.sequential import MIN_SAMPLES, Sums, difference

NO_SAMPLES = Sums(0.0, 0.0, 0.0)


class Verdict(StrEnum):
    PROMOTE = "promote"
    HOLD = "hold"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class VariantState:
    """One variant since the canary started."""

    predictions: float  # rows predicted
    labellable: float  # of those, the ones served at least one label delay ago
    errors: float  # failed prediction requests
    absolute_errors: Sums  # n, Σ|e|, Σe² of the feedback received
    latency_p95_seconds: float = math.nan  # nan: not known
    drift_score: float = math.nan  # nan: not known
    outputs: Sums = NO_SAMPLES  # n, Σŷ, Σŷ² of the predicted values

    @property
    def error_ratio(self) -> float:
        served = self.errors + self.predictions
        return self.errors / served if served else 0.0

    @property
    def coverage(self) -> float:
        """Share of the labellable predictions that have their ground truth."""
        if self.labellable <= 0:
            return 0.0
        return min(1.0, self.absolute_errors.n / self.labellable)


def _setting(default: float, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class GatePolicy:
    """What the gate demands; `modelmon-ops gate` takes each as a flag, the chart as a value."""

    alpha: float = _setting(0.05, "chance of ever rolling back a canary as good as stable")
    mixture_sd: float = _setting(0.05, "the MAE difference the sequential test finds quickest")
    min_feedback: int = _setting(200, "labels each variant needs before quality is judged")
    min_coverage: float = _setting(
        0.5, "share of each variant's labellable predictions that must have their label"
    )
    non_inferiority: float = _setting(
        0.02, "how much worse in MAE the canary may be and still be promoted"
    )
    max_error_ratio: float = _setting(0.01, "largest share of failed canary requests")
    max_latency_p95_seconds: float = _setting(0.5, "largest canary p95 latency, in seconds")
    max_drift_gap: float = _setting(
        0.15, "how far the canary's drift score (PSI) may exceed stable's"
    )
    max_prediction_shift: float = _setting(
        0.5,
        "how far the canary's mean prediction may move from stable's before labels judge it, "
        "in standard deviations of stable's predictions",
    )

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be {rule}"
            for name, rule, ok in (
                ("alpha", "within (0, 1)", 0 < self.alpha < 1),
                ("mixture_sd", "positive", self.mixture_sd > 0),
                ("min_feedback", f"at least {MIN_SAMPLES}", self.min_feedback >= MIN_SAMPLES),
                ("min_coverage", "within [0, 1]", 0 <= self.min_coverage <= 1),
                ("non_inferiority", "0 or more", self.non_inferiority >= 0),
                ("max_error_ratio", "within [0, 1]", 0 <= self.max_error_ratio <= 1),
                ("max_latency_p95_seconds", "positive", self.max_latency_p95_seconds > 0),
                ("max_drift_gap", "0 or more", self.max_drift_gap >= 0),
                ("max_prediction_shift", "0 or more", self.max_prediction_shift >= 0),
            )
            if not ok
        ]
        if problems:
            raise ValueError("gate policy: " + "; ".join(problems))


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...]

    def line(self) -> str:
        return f"{self.verdict}: " + "; ".join(self.reasons)


def serving_problems(stable: VariantState, canary: VariantState, policy: GatePolicy) -> list[str]:
    """What is wrong with the canary that needs no ground truth to see."""
    problems = []
    if canary.error_ratio > policy.max_error_ratio:
        problems.append(
            f"canary error ratio {canary.error_ratio:.2%} > {policy.max_error_ratio:.2%}"
        )
    if canary.latency_p95_seconds > policy.max_latency_p95_seconds:
        problems.append(
            f"canary p95 latency {canary.latency_p95_seconds * 1000:.0f} ms > "
            f"{policy.max_latency_p95_seconds * 1000:.0f} ms"
        )
    gap = canary.drift_score - stable.drift_score
    if gap > policy.max_drift_gap:
        problems.append(
            f"canary inputs drift from stable's: PSI {canary.drift_score:.2f} vs "
            f"{stable.drift_score:.2f} (gap > {policy.max_drift_gap:.2f})"
        )
    return problems


def prediction_shift(stable: VariantState, canary: VariantState, policy: GatePolicy) -> str | None:
    """Whether the canary's mean prediction is surely (at α, anytime-valid) further from stable's
    than max_prediction_shift of stable's standard deviations; the reason if it is."""
    interval = difference(stable.outputs, canary.outputs, policy.alpha, policy.mixture_sd)
    tolerance = policy.max_prediction_shift * math.sqrt(stable.outputs.variance)
    if interval.low > tolerance or interval.high < -tolerance:
        return (
            f"canary predictions moved from stable's: mean canary − stable {interval} at "
            f"α={policy.alpha:g}, beyond ±{tolerance:.4g} ({policy.max_prediction_shift:g} sd)"
        )
    return None


def judge(stable: VariantState, canary: VariantState, policy: GatePolicy) -> Decision:
    problems = serving_problems(stable, canary, policy)
    if problems:
        return Decision(Verdict.ROLLBACK, tuple(problems))
    waiting = [
        f"{name} has {state.absolute_errors.n:.0f} of {policy.min_feedback} labels, coverage "
        f"{state.coverage:.0%} of {policy.min_coverage:.0%}"
        for name, state in ((Variant.STABLE, stable), (Variant.CANARY, canary))
        if state.absolute_errors.n < policy.min_feedback or state.coverage < policy.min_coverage
    ]
    if waiting:
        shifted = prediction_shift(stable, canary, policy)
        if shifted:
            return Decision(Verdict.ROLLBACK, (shifted, "quality not judged yet"))
        return Decision(Verdict.HOLD, ("quality not judged yet", *waiting, "serving healthy"))
    interval = difference(
        stable.absolute_errors, canary.absolute_errors, policy.alpha, policy.mixture_sd
    )
    measured = (
        f"MAE canary − stable {interval} at α={policy.alpha:g}, coverage "
        f"{canary.coverage:.0%} / {stable.coverage:.0%}"
    )
    if interval.low > 0:
        return Decision(Verdict.ROLLBACK, ("canary MAE worse than stable", measured))
    if interval.high <= policy.non_inferiority:
        return Decision(
            Verdict.PROMOTE,
            (f"canary MAE within {policy.non_inferiority:g} of stable's or better", measured),
        )
    return Decision(Verdict.HOLD, ("MAE difference not settled", measured))
