"""A canary promoted step by step on the gate's word, resumable: its progress lives in the cluster.

At each step the canary's weight is set, the step soaks, and the gate is asked every interval
(modelmon.gate: anytime-valid, so asking often is safe). Roll back: weight 0, at once, at any
time. Promote, once the step has soaked: the next step, or 100 %. Hold: ask again, until the
step has held for `max_hold_seconds`; then stop where it is, without a verdict, for a person.

Every change is saved (where the `Cluster` keeps it) before the next one, so a run that was
interrupted, or a CI runner that was lost, resumes where it stopped: the same step, its soak
counted from when it began, the gate's window from when the canary began.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Protocol

from modelmon.gate.decision import Decision, Verdict

FULL_WEIGHT = 100


class Phase(StrEnum):
    PROGRESSING = "progressing"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled-back"
    HELD = "held"  # stopped without a verdict; running again resumes


@dataclass(frozen=True)
class PromotionState:
    revision: str  # what is being promoted (an image tag, a model version)
    step: int  # index into the plan's steps; len(steps) once promoted
    weight: int
    canary_started: float  # Unix time of the first step
    step_started: float
    phase: Phase
    last_verdict: str = ""
    hold_since: float = 0.0  # holds count from here or the step's soak, whichever is later

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PromotionState:
        data = json.loads(text)
        data["phase"] = Phase(data["phase"])
        return cls(**data)


class Cluster(Protocol):
    """Where the canary's weight is set and the promotion's state is kept."""

    def set_weight(self, weight: int) -> None: ...

    def load_state(self) -> PromotionState | None: ...

    def save_state(self, state: PromotionState) -> None: ...


# Judges the canary over the last `window_seconds` (the time since it started).
Gate = Callable[[int], Decision]


@dataclass(frozen=True)
class Plan:
    steps: Sequence[int]  # weights held before 100, e.g. (10, 50)
    soak_seconds: float
    interval_seconds: float
    max_hold_seconds: float

    def __post_init__(self) -> None:
        if not self.steps or any(not 0 < w < FULL_WEIGHT for w in self.steps):
            raise ValueError(f"steps must be weights between 1 and 99, got {list(self.steps)}")
        if list(self.steps) != sorted(set(self.steps)):
            raise ValueError(f"steps must rise, got {list(self.steps)}")


EXIT_CODES = {Phase.PROMOTED: 0, Phase.ROLLED_BACK: 1, Phase.HELD: 3}


@dataclass
class Promotion:
    cluster: Cluster
    gate: Gate
    plan: Plan
    say: Callable[[str], None]
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def run(self, revision: str) -> Phase:
        state = self._resume_or_start(revision)
        while state.phase is Phase.PROGRESSING:
            state = self._check(state)
            if state.phase is Phase.PROGRESSING:
                self.sleep(self.plan.interval_seconds)
        return state.phase

    def _resume_or_start(self, revision: str) -> PromotionState:
        saved = self.cluster.load_state()
        if saved is not None and saved.revision == revision:
            if saved.phase in (Phase.PROMOTED, Phase.ROLLED_BACK):
                self.say(f"{revision} was already {saved.phase}: {saved.last_verdict}")
                return saved
            self.say(
                f"resuming {revision} at {saved.weight} % (step {saved.step + 1} of "
                f"{len(self.plan.steps)}, begun {self.clock() - saved.step_started:.0f} s ago)"
            )
            return self._save(replace(saved, phase=Phase.PROGRESSING, hold_since=self.clock()))
        now = self.clock()
        first = self.plan.steps[0]
        self.say(f"promoting {revision} through {' → '.join(map(str, self.plan.steps))} → 100 %")
        state = PromotionState(revision, 0, first, now, now, Phase.PROGRESSING)
        self.cluster.set_weight(first)
        return self._save(state)

    def _check(self, state: PromotionState) -> PromotionState:
        now = self.clock()
        window = max(1, math.ceil(now - state.canary_started))
        decision = self.gate(window)
        soaked = now - state.step_started >= self.plan.soak_seconds
        self.say(f"[{state.weight} %, {now - state.step_started:.0f} s] {decision.line()}")
        state = replace(state, last_verdict=decision.line())
        if decision.verdict is Verdict.ROLLBACK:
            self.cluster.set_weight(0)
            self.say("rolled back: the canary gets no traffic")
            return self._save(replace(state, weight=0, phase=Phase.ROLLED_BACK))
        if decision.verdict is Verdict.PROMOTE and soaked:
            return self._next_step(state, now)
        holding_since = max(state.step_started + self.plan.soak_seconds, state.hold_since)
        if decision.verdict is Verdict.HOLD and now - holding_since >= self.plan.max_hold_seconds:
            self.say(f"no verdict at {state.weight} %: stopping here; run again to resume")
            return self._save(replace(state, phase=Phase.HELD))
        return self._save(state)

    def _next_step(self, state: PromotionState, now: float) -> PromotionState:
        step = state.step + 1
        weight = self.plan.steps[step] if step < len(self.plan.steps) else FULL_WEIGHT
        self.cluster.set_weight(weight)
        phase = Phase.PROMOTED if weight == FULL_WEIGHT else Phase.PROGRESSING
        self.say(f"canary weight {state.weight} → {weight} %")
        return self._save(replace(state, step=step, weight=weight, step_started=now, phase=phase))

    def _save(self, state: PromotionState) -> PromotionState:
        self.cluster.save_state(state)
        return state
