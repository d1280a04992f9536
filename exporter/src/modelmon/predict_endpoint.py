"""POST /predict: the exporter's hot path, a plain ASGI app in front of the FastAPI app.

Under load most of a request's cost was the framework's (dependency solving, JSON decoding in
Python, response-model validation), not the model's; this path does only what a prediction needs.
pydantic-core validates the raw body against the model's own request type in one pass (its
features, finite numbers, the batch size), and the answer is encoded once. Every other path goes
to the FastAPI app; the OpenAPI document describes /predict from the same request type.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any, NotRequired

import numpy as np
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from starlette.types import ASGIApp, Receive, Scope, Send
from typing_extensions import TypedDict

from modelmon.batching import MicroBatcher, Overloaded, ShuttingDown
from modelmon.contract import PredictionError, error_body
from modelmon.http_metrics import HttpMetrics, content_length
from modelmon.service import InjectedFailure, ModelService

PATH = "/predict"
# A JSON number the model can take: no NaN or infinity, no numeric strings.
FiniteNumber = Annotated[float, Field(allow_inf_nan=False, strict=True)]
# A TypedDict whose fields are known only at run time (the model's features); pydantic validates
# these in pydantic-core and hands back plain dicts.
_typed_dict: Any = TypedDict
# What a client that is refused for overload is told to wait before it retries.
RETRY_AFTER_SECONDS = 1


def request_type(feature_names: Sequence[str], max_rows: int) -> Any:
    """The request of one model: one row in `features` or a batch in `instances`, each row with
    exactly the model's features, each a finite number."""
    row = with_config(ConfigDict(extra="forbid"))(
        _typed_dict("Features", {name: FiniteNumber for name in feature_names})
    )
    batch = Annotated[list[row], Field(min_length=1, max_length=max_rows)]  # type: ignore[valid-type]
    request = _typed_dict(
        "PredictRequest", {"features": NotRequired[row], "instances": NotRequired[batch]}
    )
    description = (
        "Give exactly one of `features` (one row) or `instances` (a batch); each row maps the "
        "model's feature names to numbers."
    )
    return with_config(ConfigDict(extra="forbid", json_schema_extra={"description": description}))(
        request
    )


class PredictEndpoint:
    """Answers POST /predict; passes every other request to `app`."""

    def __init__(
        self,
        app: ASGIApp,
        service: ModelService,
        batcher: MicroBatcher | None,
        count_bad_input: Callable[[str], None],
        http: HttpMetrics | None = None,
    ) -> None:
        self.app = app
        self._service = service
        self._batcher = batcher
        self._count_bad_input = count_bad_input
        self._http = http
        settings = service.settings
        self._limit = settings.max_body_bytes
        self._names = service.model.feature_names
        self._adapter = TypeAdapter(request_type(self._names, settings.max_batch_rows))
        self._model_version = service.model.version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        body = await read_body(scope, receive, self._limit)
        if body is None:
            self._count_bad_input(PATH)
            message = f"request body larger than {self._limit} bytes"
            status, received = 413, content_length(scope["headers"])
            sent = await respond(send, status, error_body(["body"], message, "body_too_large"))
        else:
            status, answer, headers = await self._predict(body, started)
            received = len(body)  # what Content-Length declared, read whole
            sent = await respond(send, status, answer, headers)
        if self._http is not None:  # here, not in a wrapping layer: the hot path's own count
            self._http.observe("POST", PATH, status, received, sent, time.perf_counter() - started)

    async def _predict(
        self, body: bytes, started: float
    ) -> tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]:
        service = self._service
        try:
            request = self._adapter.validate_json(body)
        except ValidationError as exc:
            self._count_bad_input(PATH)
            return 422, {"detail": validation_details(exc)}, []
        if ("features" in request) == ("instances" in request):
            self._count_bad_input(PATH)
            message = "give exactly one of 'features' (one row) or 'instances' (a batch)"
            return 422, error_body(["body"], message, "value_error"), []
        rows = request["instances"] if "instances" in request else [request["features"]]
        matrix = np.array([[row[name] for name in self._names] for row in rows], dtype=np.float64)
        metrics = service.metrics
        try:
            service.fail_if_injected()
            if service.settings.inject_latency_seconds:
                await asyncio.sleep(service.settings.inject_latency_seconds)
            if self._batcher is None:
                values = service.model_call(matrix)
            else:
                values = await self._batcher.predict(matrix)
        except (Overloaded, ShuttingDown) as exc:
            if metrics is not None:
                metrics.errors[PredictionError.OVERLOADED].inc()
            retry = [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())]
            return 503, error_body([], str(exc), PredictionError.OVERLOADED), retry
        except Exception as exc:  # InjectedFailure, or whatever the model raised for these rows
            if metrics is not None:
                metrics.errors[PredictionError.INTERNAL].inc()
            message = str(exc) if isinstance(exc, InjectedFailure) else "the model failed"
            return 500, error_body([], message, PredictionError.INTERNAL), []
        variant = service.variant.current
        predictions = service.record(values, variant, matrix)
        if metrics is not None:
            metrics.latency.observe(time.perf_counter() - started)
        answer = {
            "model_version": self._model_version,
            "variant": str(variant),
            "predictions": [
                {"prediction_id": p.prediction_id, "prediction": p.value} for p in predictions
            ],
        }
        return 200, answer, []


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors in the exporter's error body, located under `body` as FastAPI does."""
    return [
        {"loc": ["body", *error["loc"]], "msg": error["msg"], "type": error["type"]}
        for error in exc.errors(include_url=False, include_input=False)
    ]


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The request body, or None once it is over `limit` bytes (the rest is not read)."""
    if content_length(scope["headers"]) > limit:
        return None
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        more = message.get("more_body", False)
    return body


async def respond(
    send: Send, status: int, answer: Any, headers: Sequence[tuple[bytes, bytes]] = ()
) -> int:
    """Sends the answer as JSON; returns its length."""
    payload = json.dumps(answer, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
    return len(payload)
