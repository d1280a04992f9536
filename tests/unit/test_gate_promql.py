"""The gate in PromQL gives the verdict the gate in Python gives, on the same counters.

Each scenario is a pair of variants served at a steady rate for two hours. Counters that grow by
the same amount every minute have an exact increase over any window of whole minutes, so the
state each variant is in is known in closed form: `judge` decides on it, and the real promtool
evaluates the part queries (which must read that state back) and the verdict query (which must
give judge's verdict) on the same series.
"""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml

from local_stack.toolchain import require
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
    Variant,
)
from modelmon.gate.decision import GatePolicy, VariantState, Verdict, judge
from modelmon.gate.promql import QueryParams, VariantQueries, verdict_query
from modelmon.gate.sequential import Sums

MATCHERS = 'user_id="user07",namespace="kubeflow-user07"'
WINDOW_MINUTES, EVAL_MINUTES = 30, 120
ROUNDING = 0.0001  # promtool compares to the last bit; sums in another order differ there
VERDICT_VALUE = {Verdict.PROMOTE: 1, Verdict.HOLD: 0, Verdict.ROLLBACK: -1}
# Latency buckets used here: every request of a variant falls into the one it is given.
FAST, SLOW = ("0", "0.1"), ("0.5", "1")


def sum_of_squares(n: float, mean: float, sd: float) -> float:
    """Σx² of n values with this mean and sample standard deviation."""
    return (n - 1) * sd**2 + n * mean**2 if n else 0.0


@dataclass(frozen=True)
class Traffic:
    """One variant, per minute: rows predicted, requests failed, feedback and its errors."""

    predictions: float = 80
    errors: float = 0
    feedback: float = 80  # labels arriving per minute (after the label delay)
    mae: float = 0.25
    sd: float = 0.19
    latency: tuple[str, str] = FAST
    drift: float = 0.05
    output_mean: float = 2.0  # of the predicted values
    output_sd: float = 1.0
    output_negative: float = 0.3  # per prediction, the magnitude of the negative ones' share

    def squares(self, n: float) -> float:
        """Σe² of n absolute errors with this mean and sample standard deviation."""
        return sum_of_squares(n, self.mae, self.sd)

    def outputs(self, n: float) -> Sums:
        return Sums(n, n * self.output_mean, sum_of_squares(n, self.output_mean, self.output_sd))

    def state(self, label_delay_minutes: int) -> VariantState:
        window = WINDOW_MINUTES
        n = self.feedback * window
        total = n * self.mae
        squares = self.squares(n)
        low, high = (float(edge) for edge in self.latency)
        # exact only when the delayed window lies wholly after the series began, or before
        has_labels = label_delay_minutes + window <= EVAL_MINUTES
        assert has_labels or label_delay_minutes >= EVAL_MINUTES
        return VariantState(
            predictions=self.predictions * window,
            labellable=self.predictions * window if has_labels else 0.0,
            errors=self.errors * window,
            absolute_errors=Sums(n, total, squares),
            latency_p95_seconds=low + (high - low) * 0.95 if self.predictions else math.nan,
            drift_score=self.drift,
            outputs=self.outputs(self.predictions * window),
        )

    def series(self, variant: Variant) -> list[dict[str, str]]:
        labels = f'{MATCHERS},variant="{variant}",model_version="v1"'
        n_window = self.feedback * WINDOW_MINUTES
        outputs = self.outputs(self.predictions * WINDOW_MINUTES)
        negative = self.predictions * self.output_negative
        per_minute = {
            PREDICTIONS: self.predictions,
            PREDICTION_OUTPUT_POSITIVE: self.predictions * self.output_mean + negative,
            PREDICTION_OUTPUT_NEGATIVE: negative,
            PREDICTION_OUTPUT_SQUARED: outputs.squares / WINDOW_MINUTES,
            PREDICTION_ERRORS: self.errors,
            FEEDBACK: self.feedback,
            FEEDBACK_ABSOLUTE_ERROR: self.feedback * self.mae,
            FEEDBACK_SQUARED_ERROR: self.squares(n_window) / WINDOW_MINUTES,
        }
        found = [
            {"series": f"{metric}{{{labels}}}", "values": f"0+{step!r}x{EVAL_MINUTES}"}
            for metric, step in per_minute.items()
        ]
        requests = self.predictions - self.errors
        for le in (*sorted({*FAST, *SLOW} - {"0"}), "+Inf"):
            inside = requests if float(le) >= float(self.latency[1]) else 0
            found.append(
                {
                    "series": f'{PREDICTION_LATENCY}_bucket{{{labels},le="{le}"}}',
                    "values": f"0+{inside!r}x{EVAL_MINUTES}",
                }
            )
        found.append(
            {"series": f"{DRIFT_SCORE}{{{labels}}}", "values": f"{self.drift!r}x{EVAL_MINUTES}"}
        )
        return found


GOOD = Traffic()
SCENARIOS = {
    "equal models, labels at once: promote": (GOOD, GOOD, 0, Verdict.PROMOTE),
    "canary 50 % worse: roll back": (GOOD, replace(GOOD, mae=0.375, sd=0.28), 0, Verdict.ROLLBACK),
    "canary a little worse, not settled: hold": (GOOD, replace(GOOD, mae=0.265), 0, Verdict.HOLD),
    "too few labels: hold": (GOOD, replace(GOOD, feedback=4), 0, Verdict.HOLD),
    "labels still on their way: hold": (
        GOOD,
        replace(GOOD, feedback=0),
        EVAL_MINUTES,
        Verdict.HOLD,
    ),
    "half the canary's predictions labelled: hold": (
        GOOD,
        replace(GOOD, feedback=30),
        5,
        Verdict.HOLD,
    ),
    "canary failing 5 % of requests: roll back": (
        GOOD,
        replace(GOOD, errors=2, feedback=4),
        0,
        Verdict.ROLLBACK,
    ),
    "canary slow: roll back": (GOOD, replace(GOOD, latency=SLOW), 0, Verdict.ROLLBACK),
    "canary's inputs drift from stable's: roll back": (
        GOOD,
        replace(GOOD, drift=0.4),
        0,
        Verdict.ROLLBACK,
    ),
    "canary's predictions moved 1 sd before labels: roll back": (
        GOOD,
        replace(GOOD, output_mean=3.0, feedback=0),
        EVAL_MINUTES,
        Verdict.ROLLBACK,
    ),
    "predictions moved, but the labels say as good: promote": (
        GOOD,
        replace(GOOD, output_mean=3.0),
        0,
        Verdict.PROMOTE,
    ),
    "predictions moved less than the tolerance: hold": (
        GOOD,
        replace(GOOD, output_mean=2.2, feedback=0),
        EVAL_MINUTES,
        Verdict.HOLD,
    ),
    "no canary traffic yet: hold": (
        GOOD,
        replace(GOOD, predictions=0, feedback=0),
        0,
        Verdict.HOLD,
    ),
}


def rounded(value: float) -> float:
    """What PromQL's round(value, ROUNDING) gives."""
    return math.floor(value / ROUNDING + 0.5) / (1 / ROUNDING)


def promtool_test(
    tmp_path: Path, series: list[dict[str, str]], expressions: dict[str, float]
) -> str:
    tests = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": expr,
                        "eval_time": f"{EVAL_MINUTES}m",
                        "exp_samples": [{"value": value}],
                    }
                    for expr, value in expressions.items()
                ],
            }
        ],
    }
    path = tmp_path / "gate-tests.yaml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run(
        [str(require("promtool")), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return "" if done.returncode == 0 else done.stdout + done.stderr


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_promql_gate_reads_what_the_python_gate_judges_and_agrees(scenario, tmp_path):
    stable_traffic, canary_traffic, delay, expected = SCENARIOS[scenario]
    policy = GatePolicy()
    stable, canary = stable_traffic.state(delay), canary_traffic.state(delay)
    decision = judge(stable, canary, policy)
    assert decision.verdict is expected, decision.line()

    params = QueryParams.of(MATCHERS, f"{WINDOW_MINUTES}m", f"{delay}m", policy)
    expressions = {verdict_query(params): VERDICT_VALUE[decision.verdict]}
    for variant, state in ((Variant.STABLE, stable), (Variant.CANARY, canary)):
        queries = VariantQueries(params, variant)
        parts = {
            queries.predictions: state.predictions,
            queries.labellable: state.labellable,
            queries.errors: state.errors,
            queries.feedback: state.absolute_errors.n,
            queries.absolute_error: state.absolute_errors.total,
            queries.squared_error: state.absolute_errors.squares,
            queries.drift_score: state.drift_score,
            queries.latency_p95_seconds: state.latency_p95_seconds,
            queries.output_total: state.outputs.total,
            queries.output_squared: state.outputs.squares,
        }
        expressions |= {
            f"round({query}, {ROUNDING!r})": rounded(value)
            for query, value in parts.items()
            if not math.isnan(value)
        }
    failures = promtool_test(
        tmp_path,
        stable_traffic.series(Variant.STABLE) + canary_traffic.series(Variant.CANARY),
        expressions,
    )
    assert not failures, f"{decision.line()}\n{failures}"


def test_the_scenarios_reach_every_verdict_and_every_reason_to_roll_back():
    policy = GatePolicy()
    decisions = [
        judge(stable.state(delay), canary.state(delay), policy)
        for stable, canary, delay, _ in SCENARIOS.values()
    ]
    assert {d.verdict for d in decisions} == set(Verdict)
    reasons = " ".join(" ".join(d.reasons) for d in decisions if d.verdict is Verdict.ROLLBACK)
    for reason in ("error ratio", "latency", "drift", "MAE worse", "predictions moved"):
        assert reason in reasons
