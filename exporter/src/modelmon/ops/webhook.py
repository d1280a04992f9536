"""serve-webhook: Alertmanager posts the quality alerts here, and each user whose alerts ask for a
retrain goes down the same path as `trigger-retrain --check-drift`. It acts on what the alerts
say (their labels, value and threshold), so it needs no Prometheus. Every request must carry the
bearer token."""

from __future__ import annotations

import hmac
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelmon import __version__, contract
from modelmon.exposition import MetricsEndpoint
from modelmon.metrics import labelled
from modelmon.ops.cooldown import Cooldown
from modelmon.ops.errors import OpsError
from modelmon.ops.github import GitHubWorkflow
from modelmon.ops.retrain import QualityAlert, act, by_user, decide, retrain_alerts

log = logging.getLogger("modelmon.ops.webhook")
OPENAPI = {
    "openapi": "3.1.0",
    "info": {
        "title": "modelmon retrain webhook",
        "version": __version__,
        "description": "Alertmanager's webhook receiver for the alerts labelled action=retrain.",
    },
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "paths": {
        "/alerts": {
            "post": {
                "summary": "An Alertmanager notification (webhook_config payload, version 4)",
                "security": [{"bearer": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["alerts"],
                                "properties": {
                                    "alerts": {"type": "array", "items": {"type": "object"}}
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {"description": "The decision for each user the alerts name"},
                    "400": {"description": "Not an Alertmanager payload"},
                    "401": {"description": "No bearer token, or the wrong one"},
                    "503": {"description": "GitHub could not be asked; Alertmanager retries"},
                },
            }
        },
        "/healthz": {"get": {"responses": {"200": {"description": "The webhook runs"}}}},
    },
}
DECISION_ACTIONS = ("triggered", "dry_run", "cooldown", "not_needed", "failed")
REJECT_REASONS = ("missing_token", "bad_token")


@dataclass(frozen=True)
class WebhookSettings:
    token: str
    cooldown: Cooldown
    workflow: GitHubWorkflow | None
    dry_run: bool


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.rejected = labelled(contract.WEBHOOK_REJECTED, registry)
        self.notifications = labelled(contract.WEBHOOK_NOTIFICATIONS, registry)
        self.decisions = labelled(contract.RETRAIN_DECISIONS, registry)
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)
        for action in DECISION_ACTIONS:
            self.decisions.labels(action)


def alerts_of(payload: Any) -> list[Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise ValueError("not an Alertmanager webhook payload: no 'alerts' list")
    alerts: list[Any] = payload["alerts"]
    return alerts


def _summary(alert: Any) -> dict[str, Any]:
    if not isinstance(alert, dict):
        return {"unreadable": str(alert)[:200]}
    return {
        "status": alert.get("status"),
        "labels": alert.get("labels", {}),
        "startsAt": alert.get("startsAt"),
    }


class RetrainDecider:
    """One notification at a time, off the event loop (GitHub calls block), so two alerts for
    one user cannot both pass the cooldown."""

    def __init__(self, settings: WebhookSettings, metrics: WebhookMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._lock = threading.Lock()

    def __call__(self, alerts: list[QualityAlert]) -> list[dict[str, str]]:
        decisions = []
        with self._lock:
            for user, theirs in by_user(alerts).items():
                try:
                    outcome = act(
                        decide(theirs),
                        user,
                        workflow=self._settings.workflow,
                        cooldown=self._settings.cooldown,
                        dry_run=self._settings.dry_run,
                        force=False,
                    )
                except OpsError as exc:
                    self._metrics.decisions.labels("failed").inc()
                    log.error("%s: %s", user, exc)
                    raise OpsError(f"{user}: {exc}") from exc
                self._metrics.decisions.labels(outcome.action).inc()
                log.info("%s: %s", user, outcome.message)
                decisions.append(
                    {"user_id": user, "action": outcome.action, "message": outcome.message}
                )
        return decisions


def create_webhook_app(settings: WebhookSettings, registry: CollectorRegistry) -> Starlette:
    metrics = WebhookMetrics(registry)
    expected = settings.token.encode()
    decide_all = RetrainDecider(settings, metrics)

    def refused(reason: str) -> Response:
        metrics.rejected.labels(reason).inc()
        log.warning("refused a webhook request: %s", reason.replace("_", " "))
        return JSONResponse(
            {"error": "a valid bearer token is required"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    async def alerts(request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return refused("missing_token")
        if not hmac.compare_digest(token.strip().encode(), expected):
            return refused("bad_token")
        metrics.notifications.inc()
        try:
            received = alerts_of(json.loads(await request.body()))
        except (ValueError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, ValueError) else "JSON nested too deep"
            return JSONResponse({"error": f"not an Alertmanager payload: {reason}"[:300]}, 400)
        for alert in received:
            # one JSON line per alert: what Alertmanager delivered, for operators and the e2e tier
            log.info("alert %s", json.dumps(_summary(alert), sort_keys=True))
        try:
            decisions = await run_in_threadpool(decide_all, retrain_alerts(received))
        except OpsError as exc:
            # 503 makes Alertmanager retry the notification
            return JSONResponse({"error": str(exc)}, status_code=503)
        return JSONResponse({"decisions": decisions})

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def openapi_document(_request: Request) -> Response:
        return JSONResponse(OPENAPI)

    return Starlette(
        routes=[
            Route("/alerts", alerts, methods=["POST"]),
            Route("/healthz", healthz),
            Route("/openapi.json", openapi_document),
            Route("/metrics", MetricsEndpoint(registry), methods=["GET"]),
        ]
    )
