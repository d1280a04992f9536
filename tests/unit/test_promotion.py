"""The promotion loop: steps, soak, the gate's three answers, and resuming from saved state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelmon.gate.decision import Decision, Verdict
from modelmon.ops.promotion import Phase, Plan, Promotion, PromotionState

PLAN = Plan(steps=(10, 50), soak_seconds=60, interval_seconds=10, max_hold_seconds=120)


class Memory:
    """A Cluster for unit tests: weights applied and the state saved, in memory."""

    def __init__(self, state: PromotionState | None = None) -> None:
        self.weights: list[int] = []
        self.saved = state

    def set_weight(self, weight: int) -> None:
        self.weights.append(weight)

    def load_state(self) -> PromotionState | None:
        return self.saved

    def save_state(self, state: PromotionState) -> None:
        self.saved = PromotionState.from_json(state.to_json())  # as it would round-trip


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def scripted(verdicts: Iterator[Verdict], windows: list[int]):
    def gate(window: int) -> Decision:
        windows.append(window)
        return Decision(next(verdicts), ("scripted",))

    return gate


def promotion(cluster: Memory, verdicts: Iterator[Verdict], windows: list[int], clock: Clock):
    return Promotion(
        cluster, scripted(verdicts, windows), PLAN, lambda _line: None, clock, clock.sleep
    )


def test_a_canary_the_gate_approves_goes_through_every_step_after_each_soak():
    cluster, clock, windows = Memory(), Clock(), []
    phase = promotion(cluster, iter(lambda: Verdict.PROMOTE, None), windows, clock).run("v2")
    assert phase is Phase.PROMOTED
    assert cluster.weights == [10, 50, 100]
    # asked every 10 s; each step left only once 60 s had passed since it began
    assert windows[:7] == [1, 10, 20, 30, 40, 50, 60]
    assert cluster.saved is not None
    assert cluster.saved.phase is Phase.PROMOTED


def test_a_rollback_verdict_takes_all_traffic_away_at_once_even_while_soaking():
    cluster, clock, windows = Memory(), Clock(), []
    verdicts = iter([Verdict.HOLD, Verdict.HOLD, Verdict.ROLLBACK])
    phase = promotion(cluster, verdicts, windows, clock).run("v2")
    assert phase is Phase.ROLLED_BACK
    assert cluster.weights == [10, 0]
    assert len(windows) == 3


def test_a_canary_held_too_long_stays_where_it_is_and_a_new_run_resumes_it():
    cluster, clock, windows = Memory(), Clock(), []
    phase = promotion(cluster, iter(lambda: Verdict.HOLD, None), windows, clock).run("v2")
    assert phase is Phase.HELD
    assert cluster.weights == [10], "no step up, no rollback"
    assert clock.now - 1_000_000.0 == pytest.approx(PLAN.soak_seconds + PLAN.max_hold_seconds)

    clock.now += 600  # someone looks, and runs it again
    asked = len(windows)
    resumed = promotion(cluster, iter(lambda: Verdict.PROMOTE, None), windows, clock).run("v2")
    assert resumed is Phase.PROMOTED
    assert cluster.weights == [10, 50, 100], "the first step was not set again"
    assert windows[asked] == 180 + 600, "the gate still judges since the canary began"


def test_an_interrupted_run_resumes_its_step_with_its_soak_already_counted():
    cluster, clock, windows = Memory(), Clock(), []
    verdicts = iter([Verdict.PROMOTE] * 7)  # a run killed during the first check of step 2
    with pytest.raises(StopIteration):
        promotion(cluster, verdicts, windows, clock).run("v2")
    assert cluster.saved is not None
    assert (cluster.saved.weight, cluster.saved.phase) == (50, Phase.PROGRESSING)
    clock.now += 60  # the CI runner was replaced; the step soaked meanwhile
    done = promotion(cluster, iter(lambda: Verdict.PROMOTE, None), windows, clock).run("v2")
    assert done is Phase.PROMOTED
    assert cluster.weights == [10, 50, 100]


def test_a_new_revision_starts_over_and_a_finished_one_is_not_redone():
    clock, windows = Clock(), []
    finished = PromotionState("v1", 2, 100, 0.0, 0.0, Phase.PROMOTED, "promote: done")
    cluster = Memory(finished)
    assert promotion(cluster, iter([]), windows, clock).run("v1") is Phase.PROMOTED
    assert cluster.weights == []
    assert promotion(cluster, iter([Verdict.ROLLBACK]), windows, clock).run("v2") is (
        Phase.ROLLED_BACK
    )
    assert cluster.weights == [10, 0]


@pytest.mark.parametrize("steps", [(), (0, 50), (10, 100), (50, 10)])
def test_a_plan_whose_steps_are_not_rising_weights_below_100_is_refused(steps):
    with pytest.raises(ValueError, match="steps must"):
        Plan(steps=steps, soak_seconds=1, interval_seconds=1, max_hold_seconds=1)
