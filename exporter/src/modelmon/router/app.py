"""The router's HTTP API: /predict and /feedback forwarded, /healthz, /readyz, /metrics.

A plain ASGI application: the router is one extra hop on every prediction, and a framework's
request and response objects cost more here than the five routes they would tidy up.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from modelmon.contract import (
    FAILOVER_HEADER,
    LAB_HEALTH_PATH,
    UNKNOWN_PREDICTION,
    UNKNOWN_PREDICTION_MESSAGE,
    VARIANT_HEADER,
    RouterRoute,
    Variant,
    error_body,
    variant_of_prediction,
)
from modelmon.exposition import MetricsEndpoint
from modelmon.router import openapi
from modelmon.router.cohort import draw_in_canary, in_canary
from modelmon.router.config import RouterSettings
from modelmon.router.metrics import RouterMetrics
from modelmon.router.weight import WeightSource

log = logging.getLogger("modelmon.router")
BODY_USER_FIELD = "user_id"
# Shorter than the exporters' own idle keep-alive (modelmon.serving.KEEP_ALIVE_SECONDS), so the
# pool drops a connection before the server does.
POOL_KEEP_ALIVE_SECONDS = 30
JSON = "application/json"
_VARIANT_HEADER = VARIANT_HEADER.lower().encode()
_FAILOVER_HEADER = FAILOVER_HEADER.lower().encode()
# An overloaded exporter's 503 tells the client when to retry; the router passes that on.
_RETRY_AFTER = b"retry-after"
# A refused or dropped connection: the request never reached a model, or its answer never came.
CONNECTION_FAILURES = (aiohttp.ClientConnectionError,)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class Reply:
    status: int
    content: bytes
    content_type: str
    headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(frozen=True)
class Forwarded:
    reply: Reply
    variant: Variant
    failed_over: bool


def error(status: int, loc: list[str], message: str, kind: str) -> Reply:
    return Reply(status, json.dumps(error_body(loc, message, kind)).encode(), JSON)


def json_reply(payload: dict[str, Any]) -> Reply:
    return Reply(200, json.dumps(payload).encode(), JSON)


def user_key_and_body(header_value: str | None, body: bytes) -> tuple[str | None, bytes]:
    """The user key from the header, else from the body's user_id field (removed before
    forwarding: the exporter takes features only)."""
    if header_value:
        return header_value, body
    if f'"{BODY_USER_FIELD}"'.encode() not in body:
        return None, body
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None, body  # the exporter answers malformed JSON with its own 4xx
    if not isinstance(payload, dict) or BODY_USER_FIELD not in payload:
        return None, body
    key = str(payload.pop(BODY_USER_FIELD))
    return key, json.dumps(payload).encode()


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None once it is longer than `limit` bytes."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def prediction_id_of(body: bytes) -> str | None:
    """The prediction id of a feedback body, or None when the body is not a JSON object with a
    string prediction_id."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("prediction_id"), str):
        return None
    return str(payload["prediction_id"])


async def send_reply(send: Send, reply: Reply) -> None:
    headers = [(b"content-type", reply.content_type.encode()), *reply.headers]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.content})


class RouterApp:
    """ASGI application; `aiohttp` keeps a pool of keep-alive connections to both exporters."""

    def __init__(
        self, settings: RouterSettings, registry: CollectorRegistry, metrics: RouterMetrics
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._weights = WeightSource(
            settings.weight_file,
            on_change=lambda weight: metrics.weight.set(weight / 100),
            on_error=lambda _message: metrics.weight_errors.inc(),
        )
        self._backends = {
            Variant.STABLE: settings.stable_url.rstrip("/"),
            Variant.CANARY: settings.canary_url.rstrip("/"),
        }
        self._user_header = settings.user_header.lower().encode("latin-1")
        self._client: aiohttp.ClientSession | None = None
        self._metrics_endpoint = MetricsEndpoint(registry, before_scrape=self._notice_weight)
        self._routes: dict[tuple[str, str], Callable[[Scope, bytes], Awaitable[Reply]]] = {
            ("POST", "/predict"): self._predict,
            ("POST", "/feedback"): self._feedback,
            ("GET", "/healthz"): self._healthz,
            ("GET", LAB_HEALTH_PATH): self._healthz,
            ("GET", "/readyz"): self._readyz,
            ("GET", "/openapi.json"): self._openapi,
        }
        self._paths = {path for _method, path in self._routes} | {"/metrics"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        if (method, scope["path"]) == ("GET", "/metrics"):
            await self._metrics_endpoint(scope, receive, send)
            return
        await send_reply(send, await self._reply(method, scope, receive))

    async def _reply(self, method: str, scope: Scope, receive: Receive) -> Reply:
        handler = self._routes.get((method, scope["path"]))
        if handler is None:
            if scope["path"] in self._paths:
                return error(405, [], "method not allowed", "method_not_allowed")
            return error(404, [], "not found", "not_found")
        limit = self._settings.max_body_bytes
        body = await read_body(receive, limit)
        if body is None:
            return error(413, ["body"], f"request body larger than {limit} bytes", "body_too_large")
        try:
            return await handler(scope, body)
        except Exception:  # a bug, not bad input: said as such, never a hung connection
            log.exception("%s %s failed", method, scope["path"])
            return error(500, [], "internal error in the router", "internal")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._client = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(
                        limit=512, keepalive_timeout=POOL_KEEP_ALIVE_SECONDS
                    ),
                    timeout=aiohttp.ClientTimeout(total=self._settings.timeout_seconds),
                    auto_decompress=False,
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _send(self, variant: Variant, path: str, body: bytes, content_type: str) -> Reply:
        assert self._client is not None, "the ASGI server runs the lifespan first"  # noqa: S101  # nosec B101
        async with self._client.post(
            f"{self._backends[variant]}{path}", data=body, headers={"content-type": content_type}
        ) as response:
            retry_after = response.headers.get("retry-after")
            return Reply(
                response.status,
                await response.read(),
                response.headers.get("content-type", JSON),
                ((_RETRY_AFTER, retry_after.encode()),) if retry_after else (),
            )

    async def _forward_prediction(
        self, variant: Variant, body: bytes, content_type: str
    ) -> Forwarded:
        try:
            reply = await self._send(variant, "/predict", body, content_type)
            return Forwarded(reply, variant, False)
        except CONNECTION_FAILURES:
            self._metrics.failovers[variant].inc()
        other = variant.other
        return Forwarded(await self._send(other, "/predict", body, content_type), other, True)

    def _answer(self, forwarded: Forwarded, route: RouterRoute, started: float) -> Reply:
        reply = forwarded.reply
        self._metrics.request(forwarded.variant, route, reply.status)
        self._metrics.duration[(forwarded.variant, route)].observe(time.perf_counter() - started)
        headers = [*reply.headers, (_VARIANT_HEADER, forwarded.variant.encode())]
        if forwarded.failed_over:
            headers.append((_FAILOVER_HEADER, b"1"))
        return Reply(reply.status, reply.content, reply.content_type, tuple(headers))

    async def _predict(self, scope: Scope, body: bytes) -> Reply:
        started = time.perf_counter()
        key, body = user_key_and_body(header(scope, self._user_header), body)
        weight = self._weights.weight
        if key:
            canary = in_canary(key, weight)
        else:
            draw = random.random()  # noqa: S311  # nosec B311 - a traffic split, not a secret
            canary = draw_in_canary(draw, weight)
        variant = Variant.CANARY if canary else Variant.STABLE
        content_type = header(scope, b"content-type") or JSON
        try:
            forwarded = await self._forward_prediction(variant, body, content_type)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._metrics.request(variant, RouterRoute.PREDICT, 503)
            return error(503, [], f"no model variant answered: {type(exc).__name__}", "unavailable")
        return self._answer(forwarded, RouterRoute.PREDICT, started)

    async def _feedback(self, scope: Scope, body: bytes) -> Reply:
        started = time.perf_counter()
        prediction_id = prediction_id_of(body)
        if prediction_id is None:
            self._metrics.request(Variant.STABLE, RouterRoute.FEEDBACK, 422)
            return error(
                422,
                ["body"],
                "expected a JSON object with a string prediction_id and a number actual",
                "invalid_feedback",
            )
        variant = variant_of_prediction(prediction_id)
        if variant is None:
            self._metrics.request(Variant.STABLE, RouterRoute.FEEDBACK, 404)
            return error(
                404, ["body", "prediction_id"], UNKNOWN_PREDICTION_MESSAGE, UNKNOWN_PREDICTION
            )
        content_type = header(scope, b"content-type") or JSON
        try:
            reply = await self._send(variant, "/feedback", body, content_type)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._metrics.request(variant, RouterRoute.FEEDBACK, 503)
            return error(
                503, [], f"the {variant} model did not answer: {type(exc).__name__}", "unavailable"
            )
        return self._answer(Forwarded(reply, variant, False), RouterRoute.FEEDBACK, started)

    async def _openapi(self, _scope: Scope, _body: bytes) -> Reply:
        return json_reply(openapi.document())

    async def _healthz(self, _scope: Scope, _body: bytes) -> Reply:
        return json_reply({"status": "ok"})

    async def _readyz(self, _scope: Scope, _body: bytes) -> Reply:
        return json_reply({"status": "ready", "canary_weight": self._weights.weight})

    def _notice_weight(self) -> None:
        self._weights.weight  # noqa: B018 - a scrape also notices a new weight file


def create_router_app(
    settings: RouterSettings, registry: CollectorRegistry, metrics: RouterMetrics
) -> RouterApp:
    return RouterApp(settings, registry, metrics)
