"""serve-webhook: Alertmanager posts the quality alerts here; each firing alert's user goes the
same way as `trigger-retrain --check-drift`. Every request must carry the bearer token."""

from __future__ import annotations

import hmac
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelmon.ops.errors import OpsError
from modelmon.ops.prometheus import PrometheusAPI, Scope
from modelmon.ops.readings import read_quality
from modelmon.ops.retrain import Cooldown, GitHubWorkflow, Thresholds, act, decide

QUALITY_ALERTS = (
    "ModelPerformanceDegraded",
    "ModelR2Low",
    "ModelAccuracyDropped",
    "ModelDriftDetected",
)

log = logging.getLogger("modelmon.ops.webhook")


@dataclass(frozen=True)
class WebhookSettings:
    token: str
    prometheus: PrometheusAPI
    thresholds: Thresholds
    cooldown: Cooldown
    workflow: GitHubWorkflow | None
    dry_run: bool
    alerts: tuple[str, ...] = QUALITY_ALERTS


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.rejected = Counter(
            "modelmon_ops_webhook_rejected",
            "Webhook requests refused for a missing or wrong bearer token.",
            ["reason"],
            registry=registry,
        )
        self.notifications = Counter(
            "modelmon_ops_webhook_notifications",
            "Authenticated Alertmanager notifications received.",
            registry=registry,
        )
        self.decisions = Counter(
            "modelmon_ops_retrain_decisions",
            "Retrain decisions, by what was done.",
            ["action"],
            registry=registry,
        )
        for reason in ("missing_token", "bad_token"):
            self.rejected.labels(reason)
        for action in ("triggered", "dry_run", "cooldown", "not_needed", "failed"):
            self.decisions.labels(action)


def users_to_check(payload: Any, alerts: tuple[str, ...]) -> list[tuple[str, str | None]]:
    """(user_id, namespace) of each firing quality alert in an Alertmanager webhook payload."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise ValueError("not an Alertmanager webhook payload: no 'alerts' list")
    found: list[tuple[str, str | None]] = []
    for alert in payload["alerts"]:
        labels = alert.get("labels", {}) if isinstance(alert, dict) else {}
        if alert.get("status") != "firing" or labels.get("alertname") not in alerts:
            continue
        if "user_id" not in labels:
            continue
        key = (str(labels["user_id"]), labels.get("namespace"))
        if key not in found:
            found.append(key)
    return found


def _summary(alert: Any) -> dict[str, Any]:
    if not isinstance(alert, dict):
        return {"unreadable": str(alert)[:200]}
    return {
        "status": alert.get("status"),
        "labels": alert.get("labels", {}),
        "startsAt": alert.get("startsAt"),
    }


def create_webhook_app(settings: WebhookSettings, registry: CollectorRegistry) -> Starlette:
    metrics = WebhookMetrics(registry)
    expected = settings.token.encode()
    decision_lock = threading.Lock()

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
            payload = await request.json()
            users = users_to_check(payload, settings.alerts)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        for alert in payload["alerts"]:
            # one JSON line per alert: what Alertmanager delivered, for operators and the e2e tier
            log.info("alert %s", json.dumps(_summary(alert), sort_keys=True))
        try:
            decisions = await run_in_threadpool(decide_all, users)
        except OpsError as exc:
            # 503 makes Alertmanager retry the notification
            return JSONResponse({"error": str(exc)}, status_code=503)
        return JSONResponse({"decisions": decisions})

    def decide_all(users: list[tuple[str, str | None]]) -> list[dict[str, str]]:
        """Off the event loop (Prometheus and GitHub calls block), one notification at a time,
        so two alerts for one user cannot both pass the cooldown."""
        decisions = []
        with decision_lock:
            for user, namespace in users:
                try:
                    quality = read_quality(settings.prometheus, Scope(user, namespace))
                    outcome = act(
                        decide(quality, settings.thresholds),
                        user,
                        workflow=settings.workflow,
                        cooldown=settings.cooldown,
                        dry_run=settings.dry_run,
                        force=False,
                    )
                except OpsError as exc:
                    metrics.decisions.labels("failed").inc()
                    log.error("%s: %s", user, exc)
                    raise OpsError(f"{user}: {exc}") from exc
                metrics.decisions.labels(outcome.action).inc()
                log.info("%s: %s", user, outcome.message)
                decisions.append(
                    {"user_id": user, "action": outcome.action, "message": outcome.message}
                )
        return decisions

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics_endpoint(_request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/alerts", alerts, methods=["POST"]),
            Route("/healthz", healthz),
            Route("/metrics", metrics_endpoint),
        ]
    )
