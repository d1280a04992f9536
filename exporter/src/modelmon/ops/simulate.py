"""simulate-drift: drifted traffic (with ground truth) so the model's real error grows, then what
Prometheus and the alert rules make of it; `--reset` sends undrifted traffic until the windows
the quality and drift alerts read hold none of the drifted rows."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from modelmon.contract import (
    ACTION_LABEL,
    DRIFT_WINDOW_SAMPLES,
    FEEDBACK,
    QUALITY_WINDOW_SAMPLES,
    RETRAIN_ACTION,
    ROUTER_CANARY_WEIGHT,
    USER_LABEL,
    VARIANT_LABEL,
    Variant,
)
from modelmon.ops.errors import OpsError
from modelmon.ops.load import LoadPlan, LoadResult, run_load
from modelmon.ops.prometheus import PrometheusAPI, Scope
from modelmon.ops.readings import (
    AlertCondition,
    Quality,
    alert_conditions,
    format_conditions,
    format_quality,
    in_variant_order,
    read_quality,
)

CATCH_UP_SECONDS = 120.0
RESET_ROUNDS = 5

# A progress display: (description, total) -> a context whose value is called once per request.
Progress = Callable[[str, int], AbstractContextManager[Callable[[], None]]]


@contextmanager
def no_progress(_description: str, _total: int) -> Iterator[Callable[[], None]]:
    yield lambda: None


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
    say("Before:")
    tell(say, format_quality(read_quality(api, scope)))
    what = "reference (undrifted)" if plan.level == "none" else f"{plan.level}-drift"
    say(f"Sending {plan.total} {what} predictions with ground truth to {plan.url} ...")
    result = send_and_wait(api, scope, plan, say, on_request)
    return tell_after(api, scope, say, alert_conditions(api, scope)), result


def send_and_wait(
    api: PrometheusAPI,
    scope: Scope,
    plan: LoadPlan,
    say: Callable[[str], None],
    on_request: Callable[[], None] | None,
) -> LoadResult:
    """The plan's traffic, then until Prometheus has scraped its feedback and run its rules."""
    before_feedback = _feedback_seen(api, scope)
    result = run_load(plan, on_request)
    tell(say, result.summary())
    answered = result.feedback.get("200", 0)
    if answered == 0:
        raise OpsError("no feedback was accepted, so the model's error could not change")
    say("Waiting for Prometheus to scrape it and evaluate the rules ...")
    wait_until_evaluated(api, scope, before_feedback + answered, CATCH_UP_SECONDS)
    return result


def tell_after(
    api: PrometheusAPI,
    scope: Scope,
    say: Callable[[str], None],
    conditions: list[AlertCondition],
) -> Quality:
    """The quality after the traffic, and each alert rule's condition now."""
    after = read_quality(api, scope)
    say("After:")
    tell(say, format_quality(after))
    say("Alert conditions now:")
    tell(say, format_conditions(conditions))
    return after


def tell(say: Callable[[str], None], lines: list[str]) -> None:
    for line in lines:
        say(line)


@dataclass(frozen=True)
class Refill:
    """How many predictions through the router refill every variant's windows: the fullest
    window of each (quality or drift, in rows) over the share of traffic it gets."""

    windows: dict[str, float]
    shares: dict[str, float]

    @property
    def rows(self) -> int:
        served = [rows / self.shares[v] for v, rows in self.windows.items() if self.shares[v] > 0]
        return math.ceil(max(served, default=0.0))

    @property
    def starved(self) -> list[str]:
        """Variants the router sends nothing: undrifted traffic cannot reach their windows."""
        return [variant for variant in self.windows if self.shares[variant] <= 0]

    def line(self) -> str:
        each = ", ".join(
            f"{variant} {self.windows[variant]:.0f} rows at {self.shares[variant]:.0%}"
            for variant in in_variant_order(self.windows)
        )
        return f"Refilling the quality and drift windows ({each}): {self.rows} predictions"


def refill_of(api: PrometheusAPI, scope: Scope) -> Refill:
    selector = "{" + scope.matchers() + "}"
    windows: dict[str, float] = {}
    for gauge in (QUALITY_WINDOW_SAMPLES, DRIFT_WINDOW_SAMPLES):
        found = api.by_label(f"max by ({VARIANT_LABEL}) ({gauge}{selector})", VARIANT_LABEL)
        for variant, rows in found.items():
            windows[variant] = max(windows.get(variant, 0.0), rows)
    weight = api.value(f'max({ROUTER_CANARY_WEIGHT}{{{USER_LABEL}="{scope.user}"}})')
    if weight is None:  # no router in front: the one variant there gets it all
        shares = dict.fromkeys(windows, 1.0)
    else:
        shares = {v: weight if v == Variant.CANARY else 1 - weight for v in windows}
    return Refill(windows, shares)


def reset(
    api: PrometheusAPI,
    scope: Scope,
    plan_of_rows: Callable[[int], LoadPlan],
    say: Callable[[str], None],
    progress: Progress = no_progress,
) -> Quality:
    """Undrifted traffic until no quality alert's condition holds for a variant that gets
    traffic, at most RESET_ROUNDS rounds. Each round sends each variant as many rows as its
    windows hold now: a full window is then all undrifted, one not yet full has doubled (its
    size is not exported) and the next round goes on."""
    say("Before:")
    tell(say, format_quality(read_quality(api, scope)))
    for round_number in range(1, RESET_ROUNDS + 1):
        refill = refill_of(api, scope)
        say(f"Round {round_number}: {refill.line()}")
        if refill.starved:
            say(
                f"  {', '.join(refill.starved)} gets no traffic through the router: its windows "
                "keep what they hold until it serves again"
            )
        if refill.rows == 0:
            raise OpsError("no variant of this user gets traffic: nothing to reset")
        with progress(f"round {round_number}: undrifted traffic", refill.rows) as advance:
            send_and_wait(api, scope, plan_of_rows(refill.rows), say, advance)
        conditions = alert_conditions(api, scope)
        still = [
            condition
            for condition in conditions
            if condition.labels.get(ACTION_LABEL) == RETRAIN_ACTION
            and any(labels.get(VARIANT_LABEL) not in refill.starved for labels in condition.met_by)
        ]
        if not still:
            return tell_after(api, scope, say, conditions)
        say(f"  still met: {', '.join(c.name for c in still)}")
    raise OpsError(
        f"after {RESET_ROUNDS} rounds of undrifted traffic a quality alert's condition still "
        "holds: is the model itself worse than its threshold? (modelmon-ops status)"
    )
