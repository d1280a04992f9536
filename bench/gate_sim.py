"""Simulated canary promotions, minute by minute, judged by the real gate code.

A run serves `rate` predictions a minute; each goes to the canary with the current weight. A
prediction's absolute error is |N(0, σ)| with σ chosen so stable's MAE is `stable_mae` (the demo
model's), scaled by 1 + `worse_by` on the canary; its predicted value is N(2, 1) on both
variants (a worse model is noisier, not shifted), which the gate compares before labels come. Its
ground truth arrives `label_delay` minutes later. Runs are simulated together (numpy across
runs); each minute every run still in progress asks its procedure what to do:

- `sequential`: the gate (modelmon.gate.decision.judge) on the counters since the canary
  started, every minute, as `modelmon-ops promote` asks it. A rollback verdict acts at once; a
  promote verdict raises the weight once the step has soaked.
- `welch`: .ci/promote-canary.sh as it was: at each step soak, then Welch's t-test
  (modelmon.ops.abtest.compare) over the feedback of the last window; too few samples → ask again
  after a wait, a few times, then stop where it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from modelmon.gate.decision import GatePolicy, VariantState, Verdict, judge
from modelmon.gate.sequential import Sums
from modelmon.ops.abtest import compare

STEPS = (10, 50, 100)  # canary weight, %; reaching the last one is the promotion


class Outcome(StrEnum):
    RUNNING = "running"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled back"
    UNDECIDED = "undecided"  # stopped or still held when the run's time was up


@dataclass(frozen=True)
class Traffic:
    rate: int = 120  # predictions a minute, both variants together
    stable_mae: float = 0.25
    label_delay: int = 0  # minutes
    worse_by: float = 0.0  # the canary's MAE is (1 + worse_by) × stable's
    minutes: int = 480  # a run that has not ended by then is undecided


@dataclass(frozen=True)
class WelchSchedule:
    """.ci/promote-canary.sh's defaults."""

    soak: int = 10
    retries: int = 3
    retry_wait: int = 5
    window: int = 30
    min_samples: int = 200
    alpha: float = 0.05


@dataclass
class RunResult:
    outcome: Outcome
    minute: int  # when it ended (or the run's length)


class Streams:
    """Per run and minute: how many predictions each variant served, and their error sums."""

    def __init__(self, runs: int, minutes: int) -> None:
        shape = (2, runs, minutes + 1)  # [stable, canary]; minute 0 is empty
        self.n = np.zeros(shape)
        self.total = np.zeros(shape)
        self.squares = np.zeros(shape)
        self.output_total = np.zeros(shape)
        self.output_squares = np.zeros(shape)

    def serve(
        self,
        rng: np.random.Generator,
        minute: int,
        active: np.ndarray,
        weight: np.ndarray,
        traffic: Traffic,
    ) -> None:
        rows = int(active.sum())
        if not rows:
            return
        sigma = traffic.stable_mae / math.sqrt(2 / math.pi)
        canary = rng.random((rows, traffic.rate)) < (weight[active] / 100)[:, None]
        scale = np.where(canary, sigma * (1 + traffic.worse_by), sigma)
        errors = np.abs(rng.standard_normal((rows, traffic.rate))) * scale
        outputs = rng.standard_normal((rows, traffic.rate)) + 2.0
        for side, mask in ((0, ~canary), (1, canary)):
            self.n[side, active, minute] = mask.sum(axis=1)
            self.total[side, active, minute] = (errors * mask).sum(axis=1)
            self.squares[side, active, minute] = (errors**2 * mask).sum(axis=1)
            self.output_total[side, active, minute] = (outputs * mask).sum(axis=1)
            self.output_squares[side, active, minute] = (outputs**2 * mask).sum(axis=1)

    def outputs(self, side: int, run: int, last: int) -> Sums:
        """n, Σŷ and Σŷ² of the predicted values of minutes 1..last."""
        window = slice(1, last + 1)
        return Sums(
            float(self.n[side, run, window].sum()),
            float(self.output_total[side, run, window].sum()),
            float(self.output_squares[side, run, window].sum()),
        )

    def sums(self, side: int, run: int, first: int, last: int) -> tuple[float, float, float]:
        """Σ over minutes first..last (inclusive; empty when last < first)."""
        if last < first:
            return 0.0, 0.0, 0.0
        window = slice(max(first, 0), last + 1)
        return (
            float(self.n[side, run, window].sum()),
            float(self.total[side, run, window].sum()),
            float(self.squares[side, run, window].sum()),
        )


Procedure = Callable[[Streams, int, int, int, Traffic], Verdict | None]


def sequential(policy: GatePolicy) -> Procedure:
    def decide(
        streams: Streams, run: int, minute: int, step_started: int, traffic: Traffic
    ) -> Verdict | None:
        states = []
        for side in (0, 1):
            served = streams.sums(side, run, 1, minute)
            labelled = streams.sums(side, run, 1, minute - traffic.label_delay)
            states.append(
                VariantState(
                    served[0],
                    labelled[0],
                    0.0,
                    Sums(*labelled),
                    outputs=streams.outputs(side, run, minute),
                )
            )
        verdict = judge(states[0], states[1], policy).verdict
        if verdict is Verdict.PROMOTE and minute - step_started < WelchSchedule.soak:
            return None  # every step soaks before it is left
        return verdict

    return decide


def welch_checks(schedule: WelchSchedule) -> list[int]:
    """Minutes after a step started at which the script asks: after the soak, then each retry."""
    return [
        schedule.soak + attempt * schedule.retry_wait for attempt in range(schedule.retries + 1)
    ]


def welch(schedule: WelchSchedule) -> Procedure:
    checks = welch_checks(schedule)

    def decide(
        streams: Streams, run: int, minute: int, step_started: int, traffic: Traffic
    ) -> Verdict | None:
        elapsed = minute - step_started
        if elapsed not in checks:
            return None
        newest = minute - traffic.label_delay  # feedback received in the window is about these
        stable, canary = (
            Sums(*streams.sums(side, run, newest - schedule.window + 1, newest)) for side in (0, 1)
        )
        if min(stable.n, canary.n) < max(schedule.min_samples, 2):
            return None  # too few samples: asked again at the next check, or given up
        result = compare(stable, canary, schedule.alpha)
        return Verdict.ROLLBACK if result.significant and result.difference > 0 else Verdict.PROMOTE

    return decide


def simulate(
    procedure: Procedure, traffic: Traffic, runs: int, seed: int, gives_up: int | None = None
) -> list[RunResult]:
    """`gives_up`: minutes after a step started at which a procedure without a verdict stops."""
    rng = np.random.default_rng(seed)
    streams = Streams(runs, traffic.minutes)
    step = np.zeros(runs, dtype=int)
    step_started = np.zeros(runs, dtype=int)
    results = [RunResult(Outcome.RUNNING, traffic.minutes) for _ in range(runs)]
    active = np.ones(runs, dtype=bool)
    steps = np.array(STEPS, dtype=float)
    for minute in range(1, traffic.minutes + 1):
        streams.serve(rng, minute, active, steps[step], traffic)
        for run in np.flatnonzero(active):
            verdict = procedure(streams, run, minute, int(step_started[run]), traffic)
            ended = _advance(verdict, run, minute, step, step_started, gives_up)
            if ended is not None:
                results[run] = RunResult(ended, minute)
                active[run] = False
        if not active.any():
            break
    for result in results:
        if result.outcome is Outcome.RUNNING:
            result.outcome = Outcome.UNDECIDED
    return results


def _advance(
    verdict: Verdict | None,
    run: int,
    minute: int,
    step: np.ndarray,
    step_started: np.ndarray,
    gives_up: int | None,
) -> Outcome | None:
    if verdict is Verdict.ROLLBACK:
        return Outcome.ROLLED_BACK
    if verdict is Verdict.PROMOTE:
        step[run] += 1
        step_started[run] = minute
        return Outcome.PROMOTED if step[run] == len(STEPS) - 1 else None
    if gives_up is not None and minute - step_started[run] >= gives_up:
        return Outcome.UNDECIDED
    return None
