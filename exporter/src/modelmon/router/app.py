"""The router's HTTP API: /predict and /feedback forwarded, /healthz, /readyz, /metrics."""

from __future__ import annotations

import json
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelmon.router.cohort import draw_in_canary, in_canary
from modelmon.router.config import RouterSettings
from modelmon.router.metrics import RouterMetrics
from modelmon.router.weight import WeightSource

VARIANT_HEADER = "X-Model-Variant"
FAILOVER_HEADER = "X-Canary-Failover"
BODY_USER_FIELD = "user_id"
OTHER = {"stable": "canary", "canary": "stable"}
# A refused or dropped connection: the request never reached a model, or its answer never came.
CONNECTION_FAILURES = (aiohttp.ClientConnectionError,)


@dataclass(frozen=True)
class Upstream:
    status_code: int
    content: bytes
    content_type: str | None


@dataclass
class Forwarded:
    response: Upstream
    variant: str
    failed_over: bool


def error(status: int, loc: list[str], message: str, kind: str) -> JSONResponse:
    return JSONResponse({"detail": [{"loc": loc, "msg": message, "type": kind}]}, status)


def user_key_and_body(request_headers: Any, header: str, body: bytes) -> tuple[str | None, bytes]:
    """The user key from the header, else from the body's user_id field (removed before
    forwarding: the exporter takes features only)."""
    key = request_headers.get(header)
    if key:
        return key, body
    if f'"{BODY_USER_FIELD}"'.encode() not in body:
        return None, body
    try:
        payload = json.loads(body)
    except ValueError:
        return None, body  # the exporter answers malformed JSON with its own 422
    if not isinstance(payload, dict) or BODY_USER_FIELD not in payload:
        return None, body
    key = str(payload.pop(BODY_USER_FIELD))
    return key, json.dumps(payload).encode()


def create_router_app(
    settings: RouterSettings, registry: CollectorRegistry, metrics: RouterMetrics
) -> Starlette:
    weights = WeightSource(
        settings.weight_file,
        on_change=lambda weight: metrics.weight.set(weight / 100),
        on_error=lambda _message: metrics.weight_errors.inc(),
    )
    backends = {
        "stable": settings.stable_url.rstrip("/"),
        "canary": settings.canary_url.rstrip("/"),
    }
    state: dict[str, aiohttp.ClientSession] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=512, keepalive_timeout=30)
        timeout = aiohttp.ClientTimeout(total=settings.timeout_seconds)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
            state["client"] = client
            yield

    async def send(variant: str, path: str, body: bytes, content_type: str) -> Upstream:
        async with state["client"].post(
            f"{backends[variant]}{path}", data=body, headers={"content-type": content_type}
        ) as response:
            return Upstream(
                response.status, await response.read(), response.headers.get("content-type")
            )

    async def forward_prediction(variant: str, body: bytes, content_type: str) -> Forwarded:
        try:
            return Forwarded(await send(variant, "/predict", body, content_type), variant, False)
        except CONNECTION_FAILURES:
            metrics.failovers[variant].inc()
        other = OTHER[variant]
        return Forwarded(await send(other, "/predict", body, content_type), other, True)

    def answer(forwarded: Forwarded, route: str, started: float) -> Response:
        upstream = forwarded.response
        metrics.request(forwarded.variant, route, upstream.status_code)
        metrics.duration[(forwarded.variant, route)].observe(time.perf_counter() - started)
        headers = {VARIANT_HEADER: forwarded.variant}
        if forwarded.failed_over:
            headers[FAILOVER_HEADER] = "1"
        return Response(
            upstream.content,
            status_code=upstream.status_code,
            headers=headers,
            media_type=upstream.content_type,
        )

    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        key, body = user_key_and_body(request.headers, settings.user_header, await request.body())
        weight = weights.weight
        draw = random.random()  # noqa: S311  # nosec B311 - a traffic split, not a secret
        canary = in_canary(key, weight) if key else draw_in_canary(draw, weight)
        variant = "canary" if canary else "stable"
        content_type = request.headers.get("content-type", "application/json")
        try:
            forwarded = await forward_prediction(variant, body, content_type)
        except (aiohttp.ClientError, TimeoutError) as exc:
            metrics.request(variant, "predict", 503)
            return error(503, [], f"no model variant answered: {type(exc).__name__}", "unavailable")
        return answer(forwarded, "predict", started)

    async def feedback(request: Request) -> Response:
        started = time.perf_counter()
        body = await request.body()
        try:
            prediction_id = json.loads(body).get("prediction_id")
        except (ValueError, AttributeError):
            prediction_id = None
        variant = str(prediction_id).partition("-")[0] if prediction_id else ""
        if variant not in backends:
            metrics.request("stable", "feedback", 404)
            return error(
                404,
                ["body", "prediction_id"],
                "unknown or expired prediction id",
                "unknown_prediction",
            )
        content_type = request.headers.get("content-type", "application/json")
        try:
            upstream = await send(variant, "/feedback", body, content_type)
        except (aiohttp.ClientError, TimeoutError) as exc:
            metrics.request(variant, "feedback", 503)
            return error(
                503, [], f"the {variant} model did not answer: {type(exc).__name__}", "unavailable"
            )
        return answer(Forwarded(upstream, variant, False), "feedback", started)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        return JSONResponse({"status": "ready", "canary_weight": weights.weight})

    async def metrics_endpoint(_request: Request) -> Response:
        weights.weight  # noqa: B018 - a scrape also notices a new weight file
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/predict", predict, methods=["POST"]),
            Route("/feedback", feedback, methods=["POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
        ],
        lifespan=lifespan,
    )
