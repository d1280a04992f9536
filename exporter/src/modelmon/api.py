"""HTTP API of the exporter: /predict, /feedback, /healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelmon import __version__
from modelmon.contract import (
    PREDICTION_ID_MAX_LENGTH,
    UNKNOWN_PREDICTION,
    UNKNOWN_PREDICTION_MESSAGE,
    FeedbackRejection,
    PredictionError,
    error_body,
)
from modelmon.exposition import MetricsEndpoint
from modelmon.metrics import ServingMetrics
from modelmon.service import InjectedFailure, InvalidInput, ModelService

FiniteNumber = Annotated[float, Field(allow_inf_nan=False, strict=True)]


class PredictRequest(BaseModel):
    """One row in `features`, or a batch in `instances`; each row maps feature name to value.
    `for_model` makes the model's own version, whose rows name its features."""

    model_config = ConfigDict(extra="forbid")
    features: dict[str, FiniteNumber] | None = None
    instances: list[dict[str, FiniteNumber]] | None = None

    @model_validator(mode="after")
    def one_of_features_or_instances(self) -> PredictRequest:
        if (self.features is None) == (self.instances is None):
            raise ValueError("give exactly one of 'features' (one row) or 'instances' (a batch)")
        return self

    def rows(self) -> tuple[list[dict[str, float]], str]:
        """The rows, and the field they came in (for error locations)."""
        if self.features is not None:
            return [_as_dict(self.features)], "features"
        return [_as_dict(row) for row in self.instances or []], "instances"

    @classmethod
    def for_model(cls, feature_names: Sequence[str]) -> type[PredictRequest]:
        """The request of one model: rows with exactly its features, each a finite number, so
        the OpenAPI document tells a client what to send."""
        fields: dict[str, Any] = {name: (FiniteNumber, ...) for name in feature_names}
        row = create_model("Features", __config__=ConfigDict(extra="forbid"), **fields)
        return create_model(
            "PredictRequest",
            __base__=cls,
            features=(row | None, None),
            instances=(list[row] | None, None),  # type: ignore[valid-type]
        )


def _as_dict(row: Any) -> dict[str, float]:
    return dict(row) if isinstance(row, dict) else dict(row.model_dump())


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
        body = bytearray()
        more = True
        while more and len(body) <= self.limit:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if len(body) > self.limit:
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
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


def model_routes(service: ModelService, count_bad_input: BadInputCounter) -> APIRouter:
    settings = service.settings
    metrics = service.metrics
    routes = APIRouter()

    async def predict(body: PredictRequest) -> Any:
        started = time.perf_counter()
        rows, field = body.rows()
        try:
            matrix = service.feature_matrix(rows, field)
        except InvalidInput as exc:
            count_bad_input("/predict")
            return error_response(422, ["body", *exc.location], exc.message, exc.kind)
        if settings.inject_latency_seconds:
            await asyncio.sleep(settings.inject_latency_seconds)
        try:
            predictions = service.predict(matrix)
        except InjectedFailure as exc:
            if metrics is not None:
                metrics.errors[PredictionError.INTERNAL].inc()
            return error_response(500, [], str(exc), PredictionError.INTERNAL)
        if metrics is not None:
            metrics.latency.observe(time.perf_counter() - started)
        return {
            "model_version": service.model.version,
            "variant": settings.variant,
            "predictions": [
                {"prediction_id": p.prediction_id, "prediction": p.value} for p in predictions
            ],
        }

    # FastAPI reads the body's model from the annotation: the model's own request class.
    predict.__annotations__["body"] = PredictRequest.for_model(service.model.feature_names)
    routes.add_api_route(
        "/predict",
        predict,
        methods=["POST"],
        response_model=PredictResponse,
        responses=ERROR_RESPONSES,
    )

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
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @routes.get("/readyz", responses={503: {"description": "Shutting down"}})
    async def readyz() -> Any:
        if app.state.draining:
            return JSONResponse({"status": "draining"}, status_code=503)
        return {"status": "ready", "model_version": service.model.version}

    return routes


def create_app(service: ModelService, registry: CollectorRegistry) -> FastAPI:
    app = FastAPI(
        title="modelmon exporter",
        version=__version__,
        description="Serves a scikit-learn model and exports its quality and serving metrics.",
    )
    app.state.draining = False
    count_bad_input = BadInputCounter(service.metrics)
    app.add_middleware(
        BodySizeLimit, limit=service.settings.max_body_bytes, on_refused=count_bad_input
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
    app.include_router(model_routes(service, count_bad_input))
    app.include_router(health_routes(app, service))
    app.router.routes.append(
        Route("/metrics", MetricsEndpoint(registry), methods=["GET"], include_in_schema=False)
    )
    return app
