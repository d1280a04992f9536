"""The gate as Flagger's confirm webhooks: a 2xx answer lets the canary advance, any other holds it.

Flagger calls confirm-traffic-increase every analysis interval until it steps up, and
confirm-promotion every interval once the canary holds its last step; a refusal halts the canary
where it is, without a failed check (pkg/controller/scheduler.go: runConfirmTrafficIncreaseHooks,
runConfirmPromotionHooks), and pkg/controller/webhook.go (callWebhook) counts any status above
202 as a refusal. Rolling back is left to the gate's MetricTemplate, whose -1 is a failed check
Flagger counts towards its threshold. A hold is what a MetricTemplate cannot say: Flagger
advances whenever every metric is in range. Nor can it say soak, which Flagger does not have:
this server remembers when it last let each revision advance.

The endpoints only read Prometheus: they change nothing, so they take no token.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from enum import StrEnum

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelmon.gate.decision import Verdict
from modelmon.gate.readings import GateReading
from modelmon.ops.prometheus import PrometheusError

log = logging.getLogger("modelmon.ops.gate")

# Flagger reads these statuses as "go on" and "not yet" (pkg/controller/webhook.go).
ADVANCE = 200
HOLD = 412
UNKNOWN = 503


class Hook(StrEnum):
    """The Flagger webhook types the gate answers: the path under /flagger/."""

    TRAFFIC_INCREASE = "confirm-traffic-increase"
    PROMOTION = "confirm-promotion"


class StepClock:
    """When the canary's current step began, as this server saw it: when it last let a revision
    advance. A revision it has not seen (a new one, or any after a restart of this server) starts
    its step now, so a soak is never cut short."""

    def __init__(self, soak_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.soak_seconds = soak_seconds
        self._clock = clock
        self._began: dict[str, float] = {}

    def served(self, revision: str) -> float:
        now = self._clock()
        return now - self._began.setdefault(revision, now)

    def advanced(self, revision: str) -> None:
        self._began[revision] = self._clock()


def answer(
    hook: Hook, reading: GateReading, served_seconds: float, soak_seconds: float
) -> tuple[int, str]:
    """Whether Flagger may go on, and the line that says why.

    The first step is asked for before the canary has any traffic: a canary that has served
    nothing has nothing to be judged on, and may start. Every later step, and promotion, waits for
    the gate to promote and for the step to have served its soak."""
    if hook is Hook.TRAFFIC_INCREASE and reading.canary.predictions == 0:
        return ADVANCE, "start: the canary has served nothing yet, the first step may begin"
    decision = reading.decision
    if decision.verdict is not Verdict.PROMOTE:
        return HOLD, decision.line()
    if served_seconds < soak_seconds:
        return HOLD, (
            f"soaking: {served_seconds:.0f} s of {soak_seconds:.0f} s at this step; "
            f"then {decision.line()}"
        )
    return ADVANCE, decision.line()


def create_gate_app(read: Callable[[], GateReading], steps: StepClock) -> Starlette:
    async def confirm(request: Request) -> Response:
        try:
            hook = Hook(request.path_params["hook"])
        except ValueError:
            known = ", ".join(hook.value for hook in Hook)
            return JSONResponse({"error": f"no such hook; the gate answers {known}"}, 404)
        try:
            payload = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            return JSONResponse({"error": f"not a Flagger webhook payload: {exc}"[:300]}, 400)
        canary = payload if isinstance(payload, dict) else {}
        revision = "/".join(str(canary.get(key, "?")) for key in ("namespace", "name", "checksum"))
        try:
            reading = await run_in_threadpool(read)
        except PrometheusError as exc:
            log.warning("%s: no verdict: %s", hook.value, exc)
            return JSONResponse({"advance": False, "reason": f"no verdict: {exc}"}, UNKNOWN)
        status, line = answer(hook, reading, steps.served(revision), steps.soak_seconds)
        if status == ADVANCE:
            steps.advanced(revision)
        log.info(
            "%s for %s.%s (%s): %d %s",
            hook.value,
            canary.get("name", "?"),
            canary.get("namespace", "?"),
            canary.get("phase", "?"),
            status,
            line,
        )
        return JSONResponse({"advance": status == ADVANCE, "reason": line}, status)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/flagger/{hook}", confirm, methods=["POST"]),
            Route("/healthz", healthz),
        ]
    )
