"""simulate-drift: drifted traffic (with ground truth) so the model's real error grows, then what
Prometheus and the alert rules make of it; `--reset` sends undrifted traffic the same way."""

from __future__ import annotations

import time
from collections.abc import Callable

from modelmon.contract import FEEDBACK
from modelmon.ops.errors import OpsError
from modelmon.ops.load import LoadPlan, LoadResult, run_load
from modelmon.ops.prometheus import PrometheusAPI, Scope
from modelmon.ops.readings import (
    Quality,
    alert_conditions,
    format_conditions,
    format_quality,
    read_quality,
)

CATCH_UP_SECONDS = 120.0


def _feedback_seen(api: PrometheusAPI, scope: Scope) -> float:
    return api.value(f"sum({FEEDBACK}{{{scope.matchers()}}})") or 0.0


def wait_until_evaluated(
    api: PrometheusAPI, scope: Scope, expected_feedback: float, deadline_seconds: float
) -> None:
    """Until Prometheus has scraped the feedback we sent and evaluated its rules after that."""
    deadline = time.monotonic() + deadline_seconds
    while _feedback_seen(api, scope) < expected_feedback:
        if time.monotonic() > deadline:
            raise OpsError(
                f"Prometheus has not scraped the feedback within {deadline_seconds:g} s "
                f"(saw {_feedback_seen(api, scope):.0f} of {expected_feedback:.0f}): "
                "is the model server scraped, and is --user right?"
            )
        time.sleep(1)
    scraped_at = time.time()
    while any(group_evaluated < scraped_at for group_evaluated in api.rule_group_evaluations()):
        if time.monotonic() > deadline:
            raise OpsError(f"Prometheus has not evaluated its rules within {deadline_seconds:g} s")
        time.sleep(1)


def simulate(
    api: PrometheusAPI,
    scope: Scope,
    plan: LoadPlan,
    say: Callable[[str], None],
    on_request: Callable[[], None] | None = None,
) -> tuple[Quality, LoadResult]:
    before_feedback = _feedback_seen(api, scope)
    say("Before:")
    for line in format_quality(read_quality(api, scope)):
        say(line)
    what = "reference (undrifted)" if plan.level == "none" else f"{plan.level}-drift"
    say(f"Sending {plan.total} {what} predictions with ground truth to {plan.url} ...")
    result = run_load(plan, on_request)
    for line in result.summary():
        say(line)
    answered = result.feedback.get("200", 0)
    if answered == 0:
        raise OpsError("no feedback was accepted, so the model's error could not change")
    say("Waiting for Prometheus to scrape it and evaluate the rules ...")
    wait_until_evaluated(api, scope, before_feedback + answered, CATCH_UP_SECONDS)
    after = read_quality(api, scope)
    say("After:")
    for line in format_quality(after):
        say(line)
    say("Alert conditions now:")
    for line in format_conditions(alert_conditions(api, scope)):
        say(line)
    return after, result
