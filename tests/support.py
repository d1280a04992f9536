"""Helpers that several test modules share (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from prometheus_client.parser import text_string_to_metric_families

from local_stack.pods import free_port
from local_stack.processes import ManagedProcess, Supervisor, wait_until

Sample = tuple[str, frozenset[tuple[str, str]]]
Z_999 = 3.29  # two-sided 99.9 % normal quantile
FAULT_PROPERTY = "fault-counts"  # user_properties key of what a fault test counted
T = TypeVar("T")


def parse_samples(exposition: str) -> dict[Sample, float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def only_value(samples: Mapping[Sample, float], name: str, **labels: str) -> float:
    """The value of the one series named `name` whose labels include `labels`."""
    found = [
        value
        for (sample_name, sample_labels), value in samples.items()
        if sample_name == name and set(labels.items()) <= sample_labels
    ]
    assert len(found) == 1, f"{name}{labels}: {len(found)} series"
    return found[0]


class Deadline(AssertionError):
    """A condition did not hold in time; the message carries what was last seen."""


def eventually(
    probe: Callable[[], T],
    accept: Callable[[T], bool],
    timeout: float,
    what: str,
    logs: Callable[[], str] = lambda: "",
    interval: float = 0.5,
) -> T:
    """Polls `probe` until `accept` takes its result. On timeout, fails with the description,
    the last result and the tail of the logs involved."""
    deadline = time.monotonic() + timeout
    last: object = "(no result yet)"
    while True:
        try:
            result = probe()
            last = result
            if accept(result):
                return result
        except Exception as exc:  # a failing probe is retried until the deadline
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise Deadline(
                f"{what}: not within {timeout:.0f} s\nlast result: {last!r:.2000}\n{logs()}"
            )
        time.sleep(interval)


def within_binomial_bound(successes: int, trials: int, p: float) -> bool:
    """The observed share lies within the 99.9 % normal-approximation bound of p (exact at
    p = 0 or 1, where every trial must agree)."""
    return abs(successes / trials - p) <= Z_999 * math.sqrt(p * (1 - p) / trials)


class WebhookReceiver:
    """An Alertmanager webhook endpoint on loopback; keeps every alert it is sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    receiver.received.extend(json.loads(body)["alerts"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        port = free_port()
        self.url = f"http://127.0.0.1:{port}/alerts"
        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def alerts(self, alertname: str, status: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                alert
                for alert in self.received
                if alert["labels"].get("alertname") == alertname and alert["status"] == status
            ]

    def names(self) -> set[str]:
        with self._lock:
            return {a["labels"]["alertname"] for a in self.received}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def wait_answering(url: str, process: ManagedProcess, what: str, timeout: float = 30) -> None:
    """Until GET url answers 200; fails at once, with the log, if the process died."""

    def answering() -> bool:
        if not process.alive():
            raise AssertionError(f"{what} exited:\n{process.log_tail()}")
        try:
            return requests.get(url, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_until(answering, timeout, describe=f"{what} answering")


def start_serve_webhook(
    supervisor: Supervisor,
    token_file: Path,
    *extra_args: str,
    env: Mapping[str, str] | None = None,
) -> tuple[ManagedProcess, str]:
    """A real `modelmon-ops serve-webhook` on a free loopback port; returns it and its URL."""
    port = free_port()
    process = supervisor.start(
        f"webhook-{port}",
        [
            str(Path(sys.executable).parent / "modelmon-ops"),
            "serve-webhook",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--token-file",
            str(token_file),
            *extra_args,
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    wait_answering(f"{url}/healthz", process, "serve-webhook")
    return process, url


def fuzz_operation(
    operation: Any, mode: Any, base_url: str, cases: int, headers: Mapping[str, str] | None = None
) -> list[int]:
    """Sends `cases` schemathesis cases of one OpenAPI operation (positive or negative) to a real
    server, derandomized; fails on the first 5xx; returns the statuses."""
    statuses: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=cases,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def send(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers=dict(headers or {}), timeout=10)
        statuses.append(response.status_code)
        assert response.status_code < 500, (case.body, response.text)

    send()
    return statuses
