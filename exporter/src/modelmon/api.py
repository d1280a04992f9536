"""HTTP API of the exporter: /predict, /feedback, /healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from threadpoolctl import threadpool_limits

from modelmon import __version__
from modelmon.batching import BatchLimits, MicroBatcher
from modelmon.contract import (
    LAB_HEALTH_PATH,
    PREDICTION_ID_MAX_LENGTH,
    UNKNOWN_PREDICTION,
    UNKNOWN_PREDICTION_MESSAGE,
    FeedbackRejection,
    PredictionError,
    error_body,
)
from modelmon.exposition import MetricsEndpoint
from modelmon.http_metrics import HttpMetrics, HttpMetricsMiddleware
from modelmon.metrics import ServingMetrics
from modelmon.predict_endpoint import PATH as PREDICT_PATH
from modelmon.predict_endpoint import FiniteNumber, PredictEndpoint, read_body, request_type
from modelmon.service import ModelService


class PredictionOut(BaseModel):
    prediction_id: str
    prediction: float


class PredictResponse(BaseModel):
    model_version: str
    variant: str
    predictions: list[PredictionOut]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prediction_id: Annotated[
        str, Field(min_length=1, max_length=PREDICTION_ID_MAX_LENGTH, strict=True)
    ]
    actual: FiniteNumber


class FeedbackResponse(BaseModel):
    prediction_id: str
    prediction: float
    actual: float
    absolute_error: float


class ErrorDetail(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    detail: list[ErrorDetail]


def error_response(status: int, loc: list[str | int], msg: str, kind: str) -> JSONResponse:
    return JSONResponse(error_body(loc, msg, kind), status_code=status)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "Request body over the size limit"},
    422: {"model": ErrorResponse, "description": "Invalid input; `loc` names the field"},
}


class BadInputCounter:
    """Counts refused input where the metric contract wants it, by path."""

    def __init__(self, metrics: ServingMetrics | None) -> None:
        self._metrics = metrics

    def __call__(self, path: str) -> None:
        if self._metrics is None:
            return
        if path == "/predict":
            self._metrics.errors[PredictionError.BAD_INPUT].inc()
        elif path == "/feedback":
            self._metrics.feedback_rejected[FeedbackRejection.BAD_INPUT].inc()


class BodySizeLimit:
    """Refuses request bodies over `limit` bytes before the handler parses them."""

    def __init__(self, app: ASGIApp, limit: int, on_refused: BadInputCounter) -> None:
        self.app = app
        self.limit = limit
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) <= self.limit:
            await self.app(scope, receive, send)
            return
        body = await read_body(scope, receive, self.limit)
        if body is None:
            self.on_refused(scope["path"])
            response = error_response(
                413, ["body"], f"request body larger than {self.limit} bytes", "body_too_large"
            )
            await response(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def model_routes(service: ModelService, count_bad_input: BadInputCounter) -> APIRouter:
    metrics = service.metrics
    routes = APIRouter()

    @routes.post(
        "/feedback",
        response_model=FeedbackResponse,
        responses={
            **ERROR_RESPONSES,
            404: {"model": ErrorResponse, "description": "Unknown or expired prediction id"},
        },
    )
    async def feedback(body: FeedbackRequest) -> Any:
        result = service.feedback(body.prediction_id, body.actual)
        if result is None:
            if metrics is not None:
                metrics.feedback_rejected[FeedbackRejection.UNKNOWN_PREDICTION].inc()
            return error_response(
                404, ["body", "prediction_id"], UNKNOWN_PREDICTION_MESSAGE, UNKNOWN_PREDICTION
            )
        return {
            "prediction_id": body.prediction_id,
            "prediction": result.prediction,
            "actual": body.actual,
            "absolute_error": result.absolute_error,
        }

    return routes


def health_routes(app: FastAPI, service: ModelService) -> APIRouter:
    routes = APIRouter()

    @routes.get("/healthz")
    @routes.get(LAB_HEALTH_PATH, include_in_schema=False)  # the lab's name for it
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @routes.get("/readyz", responses={503: {"description": "Shutting down"}})
    async def readyz() -> Any:
        if app.state.draining:
            return JSONResponse({"status": "draining"}, status_code=503)
        return {"status": "ready", "model_version": service.model.version}

    return routes


def new_batcher(service: ModelService) -> MicroBatcher | None:
    """The micro-batcher of the service's model, or None when batching is off."""
    settings = service.settings
    if not settings.batching:
        return None
    limits = BatchLimits(
        max_rows=settings.batching_max_rows,
        max_wait_seconds=settings.batching_max_wait_seconds,
        queue_rows=settings.batching_queue_rows,
    )
    # OpenMP and BLAS read their thread limits per thread: the model's thread gets them itself.
    limit_threads = partial(threadpool_limits, limits=settings.model_threads)
    batcher = MicroBatcher(service.model_call, limits, service.metrics, limit_threads)
    if service.metrics is not None:
        service.metrics.queue_rows.set_function(lambda: batcher.queued_rows)  # read at scrape
    return batcher


def predict_openapi(app: FastAPI, service: ModelService) -> Callable[[], dict[str, Any]]:
    """FastAPI's document, plus POST /predict (served in front of FastAPI) from its request type."""
    settings = service.settings

    def document() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        refs = "#/components/schemas/{model}"
        for name, kind in (
            ("PredictRequest", request_type(service.model.feature_names, settings.max_batch_rows)),
            ("PredictResponse", PredictResponse),
            ("ErrorResponse", ErrorResponse),
        ):
            found = TypeAdapter(kind).json_schema(ref_template=refs)
            components.update(found.pop("$defs", {}))
            components[name] = found

        def answer(description: str, model: str) -> dict[str, Any]:
            content = {"application/json": {"schema": {"$ref": refs.format(model=model)}}}
            return {"description": description, "content": content}

        request_ref = refs.format(model="PredictRequest")
        schema["paths"][PREDICT_PATH] = {
            "post": {
                "summary": "Predict",
                "operationId": "predict",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": request_ref}}},
                },
                "responses": {
                    "200": answer("One prediction per row, each with its id", "PredictResponse"),
                    "413": answer("Request body over the size limit", "ErrorResponse"),
                    "422": answer("Invalid input; `loc` names the field", "ErrorResponse"),
                    "503": answer(
                        "Too many rows wait for the model; retry after Retry-After seconds",
                        "ErrorResponse",
                    ),
                },
            }
        }
        app.openapi_schema = schema
        return schema

    return document


def create_app(service: ModelService, registry: CollectorRegistry) -> FastAPI:
    batcher = new_batcher(service)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if batcher is not None:
            batcher.start()
        try:
            yield
        finally:
            if batcher is not None:
                await batcher.close()  # answers every queued request before the process exits
            if service.dataset is not None:  # then writes every label those requests brought
                await asyncio.get_running_loop().run_in_executor(None, service.dataset.close)

    app = FastAPI(
        title="modelmon exporter",
        version=__version__,
        description="Serves a scikit-learn model and exports its quality and serving metrics.",
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry asks the global providers on every request whether it is
        # on (10 µs, a tenth of a prediction's CPU); the exporter exports to Prometheus instead.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.draining = False
    count_bad_input = BadInputCounter(service.metrics)
    app.add_middleware(
        BodySizeLimit, limit=service.settings.max_body_bytes, on_refused=count_bad_input
    )
    http = None
    if service.metrics is not None and service.settings.http_metrics:
        http = HttpMetrics(service.metrics.identity_values)
        # Inside PredictEndpoint: it times and counts every request but /predict's, which
        # PredictEndpoint counts itself (as a layer around it, it cost the hot path 5 µs).
        app.add_middleware(HttpMetricsMiddleware, metrics=http)
    # Added last, so it runs first: /predict never enters the framework's routing.
    app.add_middleware(
        PredictEndpoint,
        service=service,
        batcher=batcher,
        count_bad_input=count_bad_input,
        http=http,
    )

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        count_bad_input(request.url.path)
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        details = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in errors
        ]
        return JSONResponse({"detail": details}, status_code=422)

    app.add_exception_handler(RequestValidationError, invalid_request)
    routers = (model_routes(service, count_bad_input), health_routes(app, service))
    for router in routers:
        app.include_router(router)
    app.openapi = predict_openapi(app, service)  # type: ignore[method-assign]
    app.router.routes.append(
        Route("/metrics", MetricsEndpoint(registry), methods=["GET"], include_in_schema=False)
    )
    if http is not None:
        routes = [*app.routes, *(route for router in routers for route in router.routes)]
        http.add_handlers({route.path for route in routes if isinstance(route, Route)})
        http.add_handlers({PREDICT_PATH})
        registry.register(http)
    return app
