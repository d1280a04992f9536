"""Adaptive micro-batching: concurrent prediction requests coalesced into one model call.

A scikit-learn model's cost is mostly per call, not per row (a forest answers 256 rows in less
than twice the time of one), so under concurrency the server should call it once for many
requests. Requests wait in a bounded queue; one worker task takes everything queued (up to
`max_rows`) and runs the model on a single worker thread, so the event loop goes on parsing and
answering meanwhile and the model's own thread pools stay as configured.

The wait is adaptive. A request that finds the worker idle runs at once: at low load latency is
that of an unbatched server. Only while a queue exists (the last call was formed from more than
one request, or left some behind) does the worker hold the next call open, until as many rows
wait as the last call took (the clients that will come back) or the hold ends: it starts at an
eighth of `max_wait_seconds` and doubles up to it; the first call made for a lone request resets
it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float64]
ModelCall = Callable[[Matrix], Matrix]

# The first hold once a queue forms, as a share of max_wait_seconds; it doubles on every call that
# still finds a queue.
FIRST_HOLD_SHARE = 1 / 8


@dataclass(frozen=True)
class BatchLimits:
    max_rows: int  # rows in one model call; a larger request runs alone, never split
    max_wait_seconds: float  # longest a call is held open for more rows
    queue_rows: int  # rows allowed to wait; beyond it requests are refused at once

    def __post_init__(self) -> None:
        if self.max_rows < 1 or self.queue_rows < 1 or self.max_wait_seconds < 0:
            raise ValueError(f"invalid batch limits: {self}")


class Overloaded(RuntimeError):
    """The queue holds `queue_rows` rows already: answer 503 and ask the client to retry."""


class ShuttingDown(RuntimeError):
    """The batcher is draining for shutdown and takes no new requests."""


class BatchObserver(Protocol):
    """Where the batcher reports what it does (the exporter's metrics)."""

    def batch_formed(self, rows: int) -> None: ...

    def request_waited(self, seconds: float) -> None: ...


@dataclass
class _Pending:
    matrix: Matrix
    future: asyncio.Future[Matrix]
    enqueued_at: float


class MicroBatcher:
    """Coalesces concurrent `predict` calls into single calls of `model_call`.

    Create it inside the running event loop (`start`), and `close` it on shutdown: closing
    refuses new requests and answers every queued one before it returns.
    """

    def __init__(
        self,
        model_call: ModelCall,
        limits: BatchLimits,
        observer: BatchObserver | None = None,
        thread_initializer: Callable[[], object] | None = None,
    ) -> None:
        self._model_call = model_call
        self._limits = limits
        self._observer = observer
        self._thread_initializer = thread_initializer
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._hold_seconds = 0.0
        self._last_rows = 1
        self._closing = False
        self._wakeup: asyncio.Future[None] | None = None
        self._wake_at_rows = 1
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def limits(self) -> BatchLimits:
        return self._limits

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="model",
            initializer=self._thread_initializer,
        )
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def close(self) -> None:
        """Refuses new requests, answers the queued ones, then stops the worker thread."""
        self._closing = True
        self._wake(force=True)
        if self._worker is not None:
            await asyncio.wait([self._worker])  # ended, however: finished, failed or cancelled
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def predict(self, matrix: Matrix) -> Matrix:
        """The model's predictions for `matrix`, computed in a call shared with other requests.
        Raises Overloaded when the queue is full, ShuttingDown once closing, and whatever the
        model raised for these rows."""
        if self._closing or self._worker is None or self._worker.done():
            raise ShuttingDown("the exporter is shutting down")
        rows = len(matrix)
        if self._queue and self._queued_rows + rows > self._limits.queue_rows:
            raise Overloaded(f"{self._queued_rows} rows already wait for the model")
        future: asyncio.Future[Matrix] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(matrix, future, time.perf_counter()))
        self._queued_rows += rows
        self._wake()
        return await future

    def _wake(self, *, force: bool = False) -> None:
        wakeup = self._wakeup
        ready = force or self._queued_rows >= self._wake_at_rows
        if ready and wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _sleep_until_rows(self, rows: int, timeout: float | None) -> None:
        """Returns when `rows` rows are queued, after `timeout` seconds, or on close."""
        loop = asyncio.get_running_loop()
        self._wake_at_rows = rows
        self._wakeup = wakeup = loop.create_future()
        timer = None
        if timeout is not None:
            timer = loop.call_later(timeout, _resolve, wakeup)
        try:
            await wakeup
        finally:
            if timer is not None:
                timer.cancel()
            self._wakeup = None

    async def _run(self) -> None:
        try:
            await self._serve()
        finally:  # however the worker ends, no request is left waiting for it
            self._fail_queued(ShuttingDown("the exporter is shutting down"))

    async def _serve(self) -> None:
        limits = self._limits
        while True:
            if not self._queue:
                if self._closing:
                    return
                await self._sleep_until_rows(1, None)
                continue
            target = min(limits.max_rows, self._last_rows)
            if self._hold_seconds and not self._closing and self._queued_rows < target:
                await self._sleep_until_rows(target, self._hold_seconds)
            batch = self._take(limits.max_rows)
            queue_formed = len(batch) > 1 or bool(self._queue)
            await self._answer(batch)
            self._hold_seconds = self._next_hold(queue_formed)

    def _next_hold(self, queue_formed: bool) -> float:
        ceiling = self._limits.max_wait_seconds
        if not queue_formed or ceiling == 0:
            return 0.0
        return min(ceiling, self._hold_seconds * 2 or ceiling * FIRST_HOLD_SHARE)

    def _take(self, max_rows: int) -> list[_Pending]:
        batch = [self._queue.popleft()]
        rows = len(batch[0].matrix)
        while self._queue and rows + len(self._queue[0].matrix) <= max_rows:
            pending = self._queue.popleft()
            rows += len(pending.matrix)
            batch.append(pending)
        self._queued_rows -= rows
        self._last_rows = rows
        if self._observer is not None:
            now = time.perf_counter()
            for pending in batch:
                self._observer.request_waited(now - pending.enqueued_at)
            self._observer.batch_formed(rows)
        return batch

    async def _answer(self, batch: list[_Pending]) -> None:
        matrix = batch[0].matrix if len(batch) == 1 else np.concatenate([p.matrix for p in batch])
        try:
            values = await self._call(matrix)
        except asyncio.CancelledError:
            for pending in batch:
                _settle(pending.future, error=ShuttingDown("the exporter is shutting down"))
            raise
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0].future, error=exc)
                return
            # One bad request must not fail the others: each one alone, so the error stays its own.
            for pending in batch:
                try:
                    _settle(pending.future, await self._call(pending.matrix))
                except Exception as alone:
                    _settle(pending.future, error=alone)
            return
        start = 0
        for pending in batch:
            end = start + len(pending.matrix)
            _settle(pending.future, values[start:end])
            start = end

    async def _call(self, matrix: Matrix) -> Matrix:
        loop = asyncio.get_running_loop()
        values = await loop.run_in_executor(self._executor, self._model_call, matrix)
        if len(values) != len(matrix):
            raise RuntimeError(f"the model answered {len(values)} values for {len(matrix)} rows")
        return values

    def _fail_queued(self, error: Exception) -> None:
        while self._queue:
            _settle(self._queue.popleft().future, error=error)
        self._queued_rows = 0


def _resolve(wakeup: asyncio.Future[None]) -> None:
    if not wakeup.done():
        wakeup.set_result(None)


def _settle(
    future: asyncio.Future[Matrix], result: Matrix | None = None, error: Exception | None = None
) -> None:
    """Answers a request unless its caller has gone (a cancelled future takes no answer)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]
