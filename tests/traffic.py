"""Background traffic for the end-to-end tests: predictions, with ground truth when asked."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

import requests

from modelmon.ops.rows import Rows, bad_row

__all__ = ["Rows", "Traffic", "bad_inputs", "predictions_with_feedback"]


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
        response = session.post(f"{url}/predict", json=bad_row(), timeout=10)
        assert response.status_code == 422, response.text

    return send
