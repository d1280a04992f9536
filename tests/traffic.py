"""Background traffic for the end-to-end tests: predictions, with ground truth when asked."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import numpy as np
import requests

from modelmon import artifact
from modelmon.dataset import FEATURE_NAMES
from modelmon.ops.rows import DRIFT_LEVELS, Rows, bad_row

__all__ = [
    "CountedLoad",
    "Rows",
    "Traffic",
    "bad_inputs",
    "labelled_load",
    "predictions_with_feedback",
]


@contextmanager
def labelled_load(url: str, rate: int, *flags: str) -> Iterator[None]:
    """modelmon-ops load in the background until the block ends: `rate` predictions a second,
    each with its label unless `flags` say otherwise."""
    command = [str(Path(sys.executable).parent / "modelmon-ops"), "load", "--url", url]
    command += ["--rate", str(rate), "--duration", "900s", "--mix", "0:1:0", "--concurrency", "8"]
    load = subprocess.Popen(
        [*command, *flags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        load.terminate()
        load.wait(timeout=30)


class Traffic:
    """Sends `rate` requests per second from a thread until the `with` block ends."""

    def __init__(self, send: Callable[[requests.Session], None], rate: float) -> None:
        self._send = send
        self._pause = 1.0 / rate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sent = 0
        self.failures: list[str] = []

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._send(session)
                self.sent += 1
            except (requests.RequestException, AssertionError) as exc:
                self.failures.append(str(exc))
            self._stop.wait(max(0.0, self._pause - (time.monotonic() - started)))

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def predictions_with_feedback(
    url: str, rows: Rows, off_by: float | None = None
) -> Callable[[requests.Session], None]:
    """Predictions, each followed by its ground truth: the row's own, or the prediction plus
    `off_by` (the model's mean absolute error is then `off_by`, whatever the model)."""

    def send(session: requests.Session) -> None:
        row, truth = rows.take()
        response = session.post(f"{url}/predict", json={"features": row}, timeout=10)
        response.raise_for_status()
        [prediction] = response.json()["predictions"]
        actual = truth if off_by is None else prediction["prediction"] + off_by
        session.post(
            f"{url}/feedback",
            json={"prediction_id": prediction["prediction_id"], "actual": actual},
            timeout=10,
        ).raise_for_status()

    return send


def bad_inputs(url: str) -> Callable[[requests.Session], None]:
    def send(session: requests.Session) -> None:
        response = session.post(f"{url}/predict", json=bad_row(), timeout=10)
        assert response.status_code == 422, response.text

    return send


class CountedLoad:
    """Steady predictions through one URL from a few threads, every outcome counted: sent,
    answered by status code, and lost (no answer at all), with the ground truth of each
    answered prediction kept for feedback later. A fault test compares these counts."""

    def __init__(self, url: str, rate: float, rows: Rows, workers: int = 4) -> None:
        self.url = url
        self.rows = rows
        self._pause = workers / rate
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]
        self.sent = 0
        self.answered: dict[int, int] = {}
        self.lost: list[str] = []
        self.predictions: list[tuple[str, float]] = []  # (prediction id, truth)

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            started = time.monotonic()
            row, truth = self.rows.take()
            with self._lock:
                self.sent += 1
            try:
                response = session.post(f"{self.url}/predict", json={"features": row}, timeout=10)
            except requests.RequestException as exc:
                with self._lock:
                    self.lost.append(f"{type(exc).__name__}: {exc}")
                continue
            with self._lock:
                self.answered[response.status_code] = self.answered.get(response.status_code, 0) + 1
                if response.status_code == 200:
                    [prediction] = response.json()["predictions"]
                    self.predictions.append((prediction["prediction_id"], truth))
            self._stop.wait(max(0.0, self._pause - (time.monotonic() - started)))

    @property
    def failed(self) -> int:
        """Requests without a 200: answered otherwise, or not answered at all."""
        return self.sent - self.answered.get(200, 0)

    def summary(self) -> str:
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.answered.items()))
        return f"sent {self.sent}, answered {{{codes}}}, lost {len(self.lost)}"

    def __enter__(self) -> CountedLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)


def sample(level: str, seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` rows at the drift level as a feature matrix, and their true targets."""
    rows = Rows(seed, DRIFT_LEVELS[level])
    pairs = [rows.take() for _ in range(count)]
    features = np.array([[row[name] for name in FEATURE_NAMES] for row, _ in pairs])
    return features, np.array([truth for _, truth in pairs])


def real_mae(model: artifact.ModelArtifact, level: str, seed: int, count: int = 2000) -> float:
    """The model's real MAE on `count` new rows at the drift level."""
    features, truth = sample(level, seed, count)
    return float(np.mean(np.abs(model.predict(features) - truth)))
