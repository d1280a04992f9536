"""The metrics' own CPU per /predict, measured in process: the exporter's ASGI app called
directly (no socket, no HTTP parser, no load generator), with a model that costs nothing and no
batching, so a request's every step runs on this thread and process time counts it all.

Over sockets a 5 % effect sits inside the run-to-run noise of a two-core machine; here nothing
but the Python that a request runs is counted (separate runs still differ by about 2 µs).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from modelmon import artifact
from modelmon.api import create_app
from modelmon.config import parse_settings
from modelmon.main import build_service

App = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Any], Awaitable[None]]


def exporter_app(model_path: Path, *flags: str) -> App:
    settings = parse_settings(
        ["--model-path", str(model_path), "--batching", "false", *flags], environ={}
    )
    service, registry = build_service(settings, artifact.load(model_path))
    app: App = create_app(service, registry)
    return app


async def cpu_per_request(app: App, body: bytes, requests: int) -> float:
    """Microseconds of process time per POST /predict."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    message = {"type": "http.request", "body": body, "more_body": False}
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(sent: dict[str, Any]) -> None:
        if sent["type"] == "http.response.start":
            statuses.append(sent["status"])

    started = time.process_time()
    for _ in range(requests):
        await app(scope, receive, send)
    spent = time.process_time() - started
    if set(statuses) != {200}:
        raise RuntimeError(f"/predict answered {sorted(set(statuses))}, not only 200")
    return spent / requests * 1e6


def metrics_cpu(trivial_model: Path, rounds: int = 15, requests: int = 3000) -> dict[str, float]:
    """Median µs per request with metrics on, off, and on without the HTTP metrics, measured in
    alternation, each round in a rotated order, so that neither a change in the machine's speed
    nor a turn favours one of them."""
    served = artifact.load(trivial_model)
    body = json.dumps({"features": dict.fromkeys(served.feature_names, 0.5)}).encode()
    apps = {
        "on": exporter_app(trivial_model),
        "off": exporter_app(trivial_model, "--metrics-enabled", "false"),
        "on, HTTP metrics off": exporter_app(trivial_model, "--http-metrics", "false"),
    }

    async def measure() -> dict[str, float]:
        for app in apps.values():
            await cpu_per_request(app, body, requests // 5)  # warm-up
        samples: dict[str, list[float]] = {name: [] for name in apps}
        names = list(apps)
        for round_index in range(rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(await cpu_per_request(apps[name], body, requests))
        return {name: statistics.median(values) for name, values in samples.items()}

    return asyncio.run(measure())
