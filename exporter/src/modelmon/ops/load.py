"""Traffic like the lab's Locust user: health checks, predictions with ground truth sent back to
/feedback (optionally later), and bad inputs, at a steady rate from a pool of workers."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from modelmon.contract import VARIANT_HEADER, variant_of_prediction
from modelmon.ops.errors import OpsError
from modelmon.ops.rows import Rows, bad_row

REQUEST_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Mix:
    """Relative weights of the three kinds of request (the lab's Locust task weights)."""

    health: int = 1
    predict: int = 10
    bad: int = 2

    def __post_init__(self) -> None:
        if (
            min(self.health, self.predict, self.bad) < 0
            or self.health + self.predict + self.bad == 0
        ):
            raise OpsError("--mix: weights must be ≥ 0 and not all 0, e.g. 1:10:2")

    @classmethod
    def parse(cls, text: str) -> Mix:
        parts = text.split(":")
        if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            raise OpsError(f"--mix {text!r}: expected HEALTH:PREDICT:BAD, e.g. 1:10:2")
        return cls(*(int(p) for p in parts))

    def cycle(self) -> Iterator[str]:
        """The kinds spread evenly over each cycle (not in blocks), repeated forever."""
        counts = {"health": self.health, "predict": self.predict, "bad": self.bad}
        total = sum(counts.values())
        slots = sorted(
            (index / count, kind) for kind, count in counts.items() for index in range(count)
        )
        assert len(slots) == total  # noqa: S101  # nosec B101
        return itertools.cycle([kind for _position, kind in slots])


@dataclass(frozen=True)
class LoadPlan:
    url: str
    rate: float
    duration: float
    concurrency: int = 8
    mix: Mix = field(default_factory=Mix)
    feedback: bool = True
    feedback_delay: float = 0.0
    level: str = "none"
    seed: int = 1
    users: int = 0  # distinct X-User-ID keys to send (sticky routing); 0 sends none

    @property
    def total(self) -> int:
        return max(1, round(self.rate * self.duration))


@dataclass
class LoadResult:
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    variants: Counter[str] = field(default_factory=Counter)
    feedback: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0

    def summary(self) -> list[str]:
        sent = sum(self.requests.values())
        rate = sent / self.elapsed if self.elapsed else 0.0
        lines = [f"sent {sent} requests in {self.elapsed:.1f} s ({rate:.1f}/s)"]
        for (kind, code), count in sorted(self.requests.items()):
            lines.append(f"  {kind:<8} {code:<22} {count}")
        if self.variants:
            split = ", ".join(f"{v} {n}" for v, n in sorted(self.variants.items()))
            lines.append(f"  predictions served by: {split}")
        if self.feedback:
            answered = ", ".join(f"{code} {n}" for code, n in sorted(self.feedback.items()))
            lines.append(f"  feedback: {answered}")
        return lines


def check_reachable(url: str) -> None:
    try:
        requests.get(f"{url}/healthz", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        raise OpsError(
            f"cannot reach the model server at {url} ({type(exc).__name__}); check --url"
        ) from exc


class _Outcome:
    """Thread-safe tallies and the queue of feedback that is due later."""

    def __init__(self) -> None:
        self.result = LoadResult()
        self.lock = threading.Lock()
        self.due_feedback: list[tuple[float, int, str, float]] = []
        self._sequence = itertools.count()

    def count(self, kind: str, code: str) -> None:
        with self.lock:
            self.result.requests[(kind, code)] += 1

    def later(self, due: float, prediction_id: str, truth: float) -> None:
        with self.lock:
            heapq.heappush(self.due_feedback, (due, next(self._sequence), prediction_id, truth))

    def pop_due(self, now: float) -> list[tuple[str, float]]:
        with self.lock:
            ready = []
            while self.due_feedback and self.due_feedback[0][0] <= now:
                _due, _n, prediction_id, truth = heapq.heappop(self.due_feedback)
                ready.append((prediction_id, truth))
            return ready


def _code(response: requests.Response | None, exc: Exception | None) -> str:
    return str(response.status_code) if response is not None else f"error:{type(exc).__name__}"


def feedback_headers(prediction_id: str) -> dict[str, str]:
    """The header that routes feedback to the variant that made the prediction, as a gateway's
    or an Ingress's route matches it (the router reads the variant from the id itself)."""
    variant = variant_of_prediction(prediction_id)
    return {VARIANT_HEADER: variant} if variant else {}


class _Sender:
    """The requests of one load run, each on its worker thread's own HTTP session."""

    def __init__(self, plan: LoadPlan, outcome: _Outcome) -> None:
        self.plan = plan
        self.outcome = outcome
        self.rows = Rows.at_level(plan.level, plan.seed)
        self._sessions = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._sessions, "value"):
            self._sessions.value = requests.Session()
        return self._sessions.value  # type: ignore[no-any-return]

    def _post(self, path: str, body: object, headers: dict[str, str]) -> requests.Response:
        return self._session().post(
            f"{self.plan.url}{path}", json=body, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS
        )

    def feedback(self, prediction_id: str, truth: float) -> None:
        try:
            body = {"prediction_id": prediction_id, "actual": truth}
            code = _code(self._post("/feedback", body, feedback_headers(prediction_id)), None)
        except requests.RequestException as exc:
            code = _code(None, exc)
        with self.outcome.lock:
            self.outcome.result.feedback[code] += 1

    def _predict(self, number: int) -> None:
        plan, outcome = self.plan, self.outcome
        row, truth = self.rows.take()
        headers = {"X-User-ID": f"load-{number % plan.users}"} if plan.users else {}
        response = self._post("/predict", {"features": row}, headers)
        outcome.count("predict", _code(response, None))
        if response.status_code != 200:
            return
        answer = response.json()
        variant = response.headers.get(VARIANT_HEADER) or answer.get("variant", "unknown")
        with outcome.lock:
            outcome.result.variants[variant] += 1
        if not plan.feedback:
            return
        prediction_id = answer["predictions"][0]["prediction_id"]
        if plan.feedback_delay > 0:
            outcome.later(time.monotonic() + plan.feedback_delay, prediction_id, truth)
        else:
            self.feedback(prediction_id, truth)

    def request(self, kind: str, number: int) -> None:
        try:
            if kind == "predict":
                self._predict(number)
            elif kind == "bad":
                self.outcome.count("bad", _code(self._post("/predict", bad_row(), {}), None))
            else:
                url = f"{self.plan.url}/healthz"
                response = self._session().get(url, timeout=REQUEST_TIMEOUT_SECONDS)
                self.outcome.count("health", _code(response, None))
        except requests.RequestException as exc:
            self.outcome.count(kind, _code(None, exc))


def run_load(plan: LoadPlan, on_done: Callable[[], None] | None = None) -> LoadResult:
    """Sends plan.total requests, spaced 1/rate apart, and any delayed feedback after them."""
    check_reachable(plan.url)
    outcome = _Outcome()
    sender = _Sender(plan, outcome)
    in_flight = threading.BoundedSemaphore(plan.concurrency * 2)

    def job(kind: str, number: int) -> None:
        try:
            sender.request(kind, number)
        finally:
            in_flight.release()
            if on_done is not None:
                on_done()

    kinds = plan.mix.cycle()
    started = time.monotonic()
    futures: list[Future[None]] = []
    with ThreadPoolExecutor(plan.concurrency, thread_name_prefix="load") as pool:
        for number in range(plan.total):
            for prediction_id, truth in outcome.pop_due(time.monotonic()):
                futures.append(pool.submit(sender.feedback, prediction_id, truth))
            delay = started + number / plan.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            in_flight.acquire()
            futures.append(pool.submit(job, next(kinds), number))
        for future in futures:
            future.result()
        while outcome.due_feedback:
            time.sleep(0.05)
            for prediction_id, truth in outcome.pop_due(time.monotonic()):
                pool.submit(sender.feedback, prediction_id, truth).result()
    outcome.result.elapsed = time.monotonic() - started
    return outcome.result
