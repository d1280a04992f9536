"""The gate's answers to Flagger's confirm webhooks: advance, hold, soak, and no verdict."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from modelmon.gate.decision import GatePolicy, VariantState, Verdict, judge
from modelmon.gate.readings import GateReading
from modelmon.gate.sequential import Sums
from modelmon.ops.gate_webhook import ADVANCE, HOLD, UNKNOWN, Hook, StepClock, create_gate_app
from modelmon.ops.prometheus import PrometheusError

SOAK = 600.0
PAYLOAD = {"name": "user07-model-exporter", "namespace": "kubeflow-user07", "phase": "Progressing"}


def state(predictions: float, mae: float, labels: float | None = None) -> VariantState:
    n = predictions if labels is None else labels
    return VariantState(
        predictions, predictions, 0.0, Sums(n, mae * n, (mae**2 + 0.01) * n), 0.05, 0.0
    )


def reading(
    canary_predictions: float, canary_mae: float, labels: float | None = None
) -> GateReading:
    stable, canary = state(5000, 0.40), state(canary_predictions, canary_mae, labels)
    return GateReading(stable, canary, judge(stable, canary, GatePolicy()))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Gate:
    """The app over a reading the test sets, with a clock the test moves."""

    def __init__(self) -> None:
        self.reading = reading(0, 0.0)
        self.clock = Clock()
        self.reads = 0

        def read() -> GateReading:
            self.reads += 1
            if isinstance(self.reading, Exception):
                raise self.reading
            return self.reading

        self.client = TestClient(create_gate_app(read, StepClock(SOAK, self.clock)))

    def ask(self, hook: Hook, checksum: str = "rev1") -> tuple[int, str]:
        response = self.client.post(f"/flagger/{hook}", json={**PAYLOAD, "checksum": checksum})
        body = response.json()
        assert body["advance"] is (response.status_code == ADVANCE)
        return response.status_code, body["reason"]


@pytest.fixture
def gate() -> Gate:
    return Gate()


def test_a_canary_that_has_served_nothing_may_take_its_first_step(gate):
    assert gate.ask(Hook.TRAFFIC_INCREASE)[0] == ADVANCE
    status, reason = gate.ask(Hook.PROMOTION)
    assert status == HOLD, "promotion never goes without evidence"
    assert "hold" in reason


def test_a_step_advances_once_the_gate_promotes_and_the_step_has_soaked(gate):
    gate.ask(Hook.TRAFFIC_INCREASE)  # first step: the step clock starts
    gate.reading = reading(5000, 0.30)
    assert gate.reading.decision.verdict is Verdict.PROMOTE
    gate.clock.now += SOAK - 1
    status, reason = gate.ask(Hook.TRAFFIC_INCREASE)
    assert status == HOLD
    assert reason.startswith(f"soaking: {SOAK - 1:.0f} s of {SOAK:.0f} s")
    gate.clock.now += 1
    assert gate.ask(Hook.TRAFFIC_INCREASE)[0] == ADVANCE
    assert gate.ask(Hook.PROMOTION)[0] == HOLD, "the next step soaks from its own start"
    gate.clock.now += SOAK
    status, reason = gate.ask(Hook.PROMOTION)
    assert status == ADVANCE
    assert reason.startswith("promote")


def test_a_canary_not_yet_judged_better_is_held_however_long_it_served(gate):
    gate.reading = reading(5000, 0.30, labels=50)  # too few labels to judge yet
    assert gate.reading.decision.verdict is Verdict.HOLD
    gate.clock.now += 10 * SOAK
    for hook in Hook:
        status, reason = gate.ask(hook)
        assert status == HOLD
        assert reason.startswith("hold")


def test_a_revision_the_server_has_not_seen_soaks_from_now(gate):
    gate.reading = reading(5000, 0.30)
    gate.clock.now += SOAK
    assert gate.ask(Hook.TRAFFIC_INCREASE, "rev1")[0] == HOLD, "first heard of it just now"
    gate.clock.now += SOAK
    assert gate.ask(Hook.TRAFFIC_INCREASE, "rev1")[0] == ADVANCE
    assert gate.ask(Hook.TRAFFIC_INCREASE, "rev2")[0] == HOLD


def test_without_a_soak_a_promote_verdict_goes_on_at_once():
    ticks = iter(range(1000))
    steps = StepClock(0.0, lambda: float(next(ticks)))  # every reading of the clock is later
    assert steps.served("rev1") == 0.0


def test_no_verdict_is_not_a_go(gate):
    gate.reading = PrometheusError("Prometheus at http://p:9090: connection refused")
    response = gate.client.post(f"/flagger/{Hook.PROMOTION}", json=PAYLOAD)
    assert response.status_code == UNKNOWN
    assert response.json() == {
        "advance": False,
        "reason": "no verdict: Prometheus at http://p:9090: connection refused",
    }


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/flagger/rollback", b"{}", 404, "no such hook"),
        (f"/flagger/{Hook.PROMOTION}", b"{not json", 400, "not a Flagger webhook payload"),
    ],
)
def test_bad_requests_are_refused_without_reading_prometheus(gate, path, body, status, error):
    response = gate.client.post(path, content=body)
    assert response.status_code == status
    assert error in response.json()["error"]
    assert gate.reads == 0


def test_every_refusal_is_a_status_flagger_reads_as_not_yet():
    # pkg/controller/webhook.go, callWebhook: a status above 202 is an error, which the confirm
    # hooks take as "halt" (pkg/controller/scheduler.go, runConfirmTrafficIncreaseHooks).
    assert ADVANCE <= 202 < min(HOLD, UNKNOWN)


def test_a_rollback_verdict_holds_here_and_says_so_in_the_gates_own_words(gate):
    # rolling back is the MetricTemplate's failed check; the webhook only refuses to go on
    gate.reading = reading(5000, 0.55)
    assert gate.reading.decision.verdict is Verdict.ROLLBACK
    assert gate.ask(Hook.TRAFFIC_INCREASE) == (HOLD, gate.reading.decision.line())
