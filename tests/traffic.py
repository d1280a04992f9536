"""Background traffic for the end-to-end tests: predictions, with ground truth when asked."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

import numpy as np
import requests

from modelmon.dataset import FEATURE_NAMES, make_dataset, standardised_truth

Row = dict[str, float]


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


class Rows:
    """Inputs like the training data, optionally shifted, each with its true target."""

    def __init__(self, seed: int, shift: dict[str, float] | None = None) -> None:
        data = make_dataset(seed=seed)
        self._features = data.features.copy()
        for name, delta in (shift or {}).items():
            self._features[:, FEATURE_NAMES.index(name)] += delta
        rng = np.random.default_rng(seed)
        self._truth = standardised_truth(self._features, data.target_mean, data.target_std, rng)
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> tuple[Row, float]:
        with self._lock:
            index = self._next % len(self._features)
            self._next += 1
        row = dict(zip(FEATURE_NAMES, map(float, self._features[index]), strict=True))
        return row, float(self._truth[index])


def predictions_with_feedback(url: str, rows: Rows) -> Callable[[requests.Session], None]:
    def send(session: requests.Session) -> None:
        row, truth = rows.take()
        response = session.post(f"{url}/predict", json={"features": row}, timeout=10)
        response.raise_for_status()
        [prediction] = response.json()["predictions"]
        session.post(
            f"{url}/feedback",
            json={"prediction_id": prediction["prediction_id"], "actual": truth},
            timeout=10,
        ).raise_for_status()

    return send


def bad_inputs(url: str) -> Callable[[requests.Session], None]:
    def send(session: requests.Session) -> None:
        response = session.post(f"{url}/predict", json={"features": {"x1": "oops"}}, timeout=10)
        assert response.status_code == 422, response.text

    return send
