"""The local stack, started once for the end-to-end tests of a session, with a webhook receiver
that records what Alertmanager delivers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from local_stack.pods import free_port
from local_stack.processes import wait_until
from local_stack.stack import DEFAULT_VALUES, LocalStack, StackOptions

E2E_VALUES = Path(__file__).with_name("values-e2e.yaml")


class WebhookReceiver:
    """An Alertmanager webhook endpoint on loopback; keeps every notification it gets."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    receiver.notifications.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    def alerts(self, alertname: str, status: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                alert
                for notification in self.notifications
                for alert in notification["alerts"]
                if alert["labels"].get("alertname") == alertname and alert["status"] == status
            ]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="session")
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def local_stack(webhook: WebhookReceiver) -> Iterator[LocalStack]:
    options = StackOptions(
        values_files=(DEFAULT_VALUES, E2E_VALUES),
        set_values={"alerting.webhook.url": webhook.url},
        release="e2e",
        namespace="kubeflow-user01",
    )
    with LocalStack(options) as stack:
        wait_until(stack.targets_healthy, 30, describe="every Prometheus target up")
        yield stack
