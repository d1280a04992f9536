"""The micro-batcher: coalescing, limits, per-request errors, overload and drain.

The model here is a gate the test opens: while it is closed the first call blocks its worker
thread and later requests queue, so what ends up in one call is decided by the test, not by
timing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest

from modelmon.batching import BatchLimits, MicroBatcher, Overloaded, ShuttingDown

NO_HOLD = BatchLimits(max_rows=64, max_wait_seconds=0.0, queue_rows=1000)
EVENTUALLY = 30  # seconds: only a hung batcher takes this long


class GatedModel:
    """Doubles the first column; blocks each call until the test opens the gate, records the rows
    of every call, and fails any call holding a negative first value."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls: list[int] = []
        self.started = threading.Semaphore(0)

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        self.calls.append(len(matrix))
        self.started.release()
        assert self.gate.wait(EVENTUALLY), "the test never opened the gate"
        if (matrix[:, 0] < 0).any():
            raise ValueError("negative input")
        return matrix[:, 0] * 2


class Recorder:
    def __init__(self) -> None:
        self.batches: list[int] = []
        self.waits: list[float] = []

    def batch_formed(self, rows: int) -> None:
        self.batches.append(rows)

    def request_waited(self, seconds: float) -> None:
        self.waits.append(seconds)


def rows(*firsts: float) -> np.ndarray:
    return np.array([[first, 0.0] for first in firsts])


async def call_started(model: GatedModel) -> None:
    assert await asyncio.to_thread(model.started.acquire, True, EVENTUALLY), "no model call began"


def run(
    body: Callable[[MicroBatcher, GatedModel], Awaitable[Any]],
    limits: BatchLimits = NO_HOLD,
    observer: Recorder | None = None,
) -> Any:
    async def main() -> Any:
        model = GatedModel()
        batcher = MicroBatcher(model, limits, observer)
        batcher.start()
        try:
            return await asyncio.wait_for(body(batcher, model), EVENTUALLY)
        finally:
            model.gate.set()
            await batcher.close()

    return asyncio.run(main())


def test_requests_that_queue_behind_a_call_share_the_next_one_and_keep_their_own_answers():
    async def body(batcher: MicroBatcher, model: GatedModel) -> list[np.ndarray]:
        first = asyncio.ensure_future(batcher.predict(rows(1)))
        await call_started(model)  # the first request is in the model; the rest must queue
        queued = [asyncio.ensure_future(batcher.predict(rows(10 * i, 10 * i + 1))) for i in (1, 2)]
        queued.append(asyncio.ensure_future(batcher.predict(rows(50))))
        await asyncio.sleep(0)
        assert batcher.queued_rows == 5
        model.gate.set()
        answers = await asyncio.gather(first, *queued)
        assert batcher.queued_rows == 0
        return answers

    recorder = Recorder()
    answers = run(body, observer=recorder)
    assert [a.tolist() for a in answers] == [[2], [20, 22], [40, 42], [100]]
    assert recorder.batches == [1, 5], "one call for the first request, one for the queue"
    assert len(recorder.waits) == 4


def test_a_call_takes_at_most_max_rows_and_a_larger_request_runs_alone_unsplit():
    limits = BatchLimits(max_rows=3, max_wait_seconds=0.0, queue_rows=1000)

    async def body(batcher: MicroBatcher, model: GatedModel) -> list[int]:
        first = asyncio.ensure_future(batcher.predict(rows(1)))
        await call_started(model)
        singles = [asyncio.ensure_future(batcher.predict(rows(i))) for i in range(2, 7)]
        large = asyncio.ensure_future(batcher.predict(rows(*range(7, 17))))
        await asyncio.sleep(0)
        model.gate.set()
        answers = await asyncio.gather(first, *singles, large)
        assert answers[-1].tolist() == [2 * v for v in range(7, 17)]
        return model.calls

    assert run(body, limits) == [1, 3, 2, 10]


def test_a_failing_request_fails_alone_and_the_others_in_its_call_are_answered():
    async def body(batcher: MicroBatcher, model: GatedModel) -> list[Any]:
        first = asyncio.ensure_future(batcher.predict(rows(1)))
        await call_started(model)
        good = asyncio.ensure_future(batcher.predict(rows(3)))
        bad = asyncio.ensure_future(batcher.predict(rows(-1)))
        also_good = asyncio.ensure_future(batcher.predict(rows(4, 5)))
        await asyncio.sleep(0)
        model.gate.set()
        return await asyncio.gather(first, good, bad, also_good, return_exceptions=True)

    first, good, bad, also_good = run(body)
    assert first.tolist() == [2]
    assert good.tolist() == [6]
    assert isinstance(bad, ValueError)
    assert also_good.tolist() == [8, 10]


def test_a_full_queue_refuses_at_once_and_loses_nothing_it_took():
    limits = BatchLimits(max_rows=64, max_wait_seconds=0.0, queue_rows=3)

    async def body(batcher: MicroBatcher, model: GatedModel) -> tuple[int, int, int]:
        first = asyncio.ensure_future(batcher.predict(rows(1)))
        await call_started(model)
        taken = [asyncio.ensure_future(batcher.predict(rows(i))) for i in (2, 3, 4)]
        await asyncio.sleep(0)
        refused = 0
        for value in (5, 6):
            with pytest.raises(Overloaded):
                await batcher.predict(rows(value))  # answered without waiting for the model
            refused += 1
        model.gate.set()
        answered = await asyncio.gather(first, *taken)
        return 1 + len(taken) + refused, len(answered), refused

    sent, answered, refused = run(body, limits)
    assert (sent, answered, refused) == (6, 4, 2), "every request answered or refused, none lost"


def test_closing_answers_every_queued_request_then_refuses_new_ones():
    async def body(batcher: MicroBatcher, model: GatedModel) -> tuple[list[Any], Any]:
        first = asyncio.ensure_future(batcher.predict(rows(1)))
        await call_started(model)
        queued = [asyncio.ensure_future(batcher.predict(rows(i))) for i in range(2, 9)]
        await asyncio.sleep(0)
        closing = asyncio.ensure_future(batcher.close())
        await asyncio.sleep(0)
        late = await asyncio.gather(batcher.predict(rows(99)), return_exceptions=True)
        model.gate.set()
        await closing
        return await asyncio.gather(first, *queued), late[0]

    answers, late = run(body)
    assert [a.tolist() for a in answers] == [[2 * i] for i in range(1, 9)], "all 8 answered"
    assert isinstance(late, ShuttingDown)


def test_if_the_worker_is_cancelled_no_request_is_left_waiting_and_new_ones_are_refused():
    async def body(batcher: MicroBatcher, model: GatedModel) -> list[Any]:
        first = asyncio.ensure_future(batcher.predict(rows(1)))
        await call_started(model)
        queued = [asyncio.ensure_future(batcher.predict(rows(i))) for i in (2, 3)]
        await asyncio.sleep(0)
        [worker] = [t for t in asyncio.all_tasks() if t.get_name() == "micro-batcher"]
        worker.cancel()
        answers = await asyncio.gather(first, *queued, return_exceptions=True)
        late = await asyncio.gather(batcher.predict(rows(4)), return_exceptions=True)
        return [*answers, *late]

    answers = run(body)
    assert len(answers) == 4
    assert all(isinstance(answer, ShuttingDown) for answer in answers), answers


def test_a_lone_request_is_never_held_even_with_a_long_maximum_wait():
    limits = BatchLimits(max_rows=64, max_wait_seconds=3600.0, queue_rows=1000)

    async def body(batcher: MicroBatcher, model: GatedModel) -> list[int]:
        model.gate.set()
        for value in range(5):  # one at a time: no queue ever forms
            assert (await batcher.predict(rows(value))).tolist() == [2 * value]
        return model.calls

    assert run(body, limits) == [1] * 5


def test_once_a_queue_has_formed_the_next_call_waits_for_as_many_rows_as_the_last_took():
    limits = BatchLimits(max_rows=4, max_wait_seconds=3600.0, queue_rows=1000)

    async def body(batcher: MicroBatcher, model: GatedModel) -> list[int]:
        first = asyncio.ensure_future(batcher.predict(rows(1)))
        await call_started(model)
        queued = [asyncio.ensure_future(batcher.predict(rows(i))) for i in (2, 3)]
        await asyncio.sleep(0)
        model.gate.set()
        await asyncio.gather(first, *queued)  # calls [1, 2]: a queue formed
        held = [asyncio.ensure_future(batcher.predict(rows(4)))]
        await asyncio.sleep(0.05)
        assert model.calls == [1, 2], "one row of the two the last call took: still held open"
        held.append(asyncio.ensure_future(batcher.predict(rows(5))))
        await asyncio.gather(*held)
        return model.calls

    assert run(body, limits) == [1, 2, 2]


def test_limits_are_checked():
    with pytest.raises(ValueError, match="invalid batch limits"):
        BatchLimits(max_rows=0, max_wait_seconds=0.0, queue_rows=1)
