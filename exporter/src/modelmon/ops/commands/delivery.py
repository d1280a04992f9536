"""gate, promote and serve-gate: the canary judged from Prometheus now, promoted step by step on
it, and the same judgement served to Flagger as its confirm webhooks."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path

from modelmon.contract import Variant
from modelmon.flags import add_flags
from modelmon.gate.decision import Decision, GatePolicy, VariantState, Verdict
from modelmon.gate.readings import GateReading, read_and_judge
from modelmon.gate.sequential import Sums
from modelmon.ops.commands.base import ENV_PREFIX, LISTEN_FLAGS, Command, say, say_all, scope_of
from modelmon.ops.durations import seconds, seconds_or_zero
from modelmon.ops.errors import OpsError
from modelmon.ops.helm_release import HelmRelease
from modelmon.ops.prometheus import PrometheusAPI, PrometheusError
from modelmon.ops.promotion import EXIT_CODES as PROMOTION_EXIT_CODES
from modelmon.ops.promotion import Plan, Promotion

EXIT_CODES = {Verdict.PROMOTE: 0, Verdict.ROLLBACK: 1, Verdict.HOLD: 3}


def _flag_name(field: dataclasses.Field[object]) -> str:
    return "--" + field.name.replace("_", "-")


def gate_flags(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    parser.add_argument(
        "--window",
        default="1h",
        help="judge the counters' increase over this range: the time since the canary started "
        "(default 1h)",
    )
    policy_flags(parser, env)


def policy_flags(parser: argparse.ArgumentParser, _env: Mapping[str, str]) -> None:
    parser.add_argument(
        "--label-delay",
        default="0",
        help="how long ground truth takes to arrive, e.g. 30m; predictions younger than this "
        "are not expected to have it yet (default 0)",
    )
    policy = parser.add_argument_group("policy")
    for field in dataclasses.fields(GatePolicy):
        kind = int if field.type in (int, "int") else float
        policy.add_argument(
            _flag_name(field),
            dest=f"policy_{field.name}",
            metavar=kind.__name__.upper(),
            type=kind,
            default=field.default,
            help=f"{field.metadata['help']} (default {field.default})",
        )


def policy_of(args: argparse.Namespace) -> GatePolicy:
    values = {
        field.name: getattr(args, f"policy_{field.name}")
        for field in dataclasses.fields(GatePolicy)
    }
    try:
        return GatePolicy(**values)
    except ValueError as exc:
        raise OpsError(str(exc)) from exc


def label_delay_seconds(text: str) -> int:
    return int(seconds_or_zero(text))


def format_reading(reading: GateReading) -> list[str]:
    def row(name: str, state: VariantState) -> str:
        mae = state.absolute_errors.mean
        latency = state.latency_p95_seconds
        return (
            f"  {name:<8} {state.predictions:>11.0f} {state.absolute_errors.n:>8.0f} "
            f"{state.coverage:>8.0%} {'–' if math.isnan(mae) else f'{mae:.4f}':>8} "
            f"{state.error_ratio:>7.2%} "
            f"{'–' if math.isnan(latency) else f'{latency * 1000:.0f} ms':>11} "
            f"{'–' if math.isnan(state.drift_score) else f'{state.drift_score:.3f}':>6}"
        )

    return [
        f"  {'variant':<8} {'predictions':>11} {'labels':>8} {'coverage':>8} {'MAE':>8} "
        f"{'errors':>7} {'p95':>11} {'drift':>6}",
        row(Variant.STABLE, reading.stable),
        row(Variant.CANARY, reading.canary),
        f"verdict: {reading.decision.line()}",
    ]


def reader(args: argparse.Namespace) -> Callable[[int], GateReading]:
    """The gate over the last `window` seconds, as the flags configure it."""
    return gate_reader(
        PrometheusAPI(args.prometheus_url),
        scope_of(args).matchers(),
        label_delay_seconds(args.label_delay),
        policy_of(args),
    )


def gate_reader(
    api: PrometheusAPI, matchers: str, delay: int, policy: GatePolicy
) -> Callable[[int], GateReading]:
    def read(window: int) -> GateReading:
        if delay >= window:
            return GateReading(*_unjudged(f"the canary is younger than --label-delay ({delay} s)"))
        return read_and_judge(api, matchers, f"{window}s", f"{delay}s", policy)

    return read


def _unjudged(reason: str) -> tuple[VariantState, VariantState, Decision]:
    nothing = VariantState(0.0, 0.0, 0.0, Sums(0.0, 0.0, 0.0))
    return nothing, nothing, Decision(Verdict.HOLD, (f"no verdict: {reason}",))


def checked_window(args: argparse.Namespace) -> int:
    window = int(seconds(args.window))
    if label_delay_seconds(args.label_delay) >= window:
        raise OpsError(
            f"--label-delay {args.label_delay} is not shorter than --window {args.window}: "
            "no prediction in the window could have its label"
        )
    return window


def run_gate(args: argparse.Namespace, _env: Mapping[str, str]) -> int:
    window = checked_window(args)
    say(f"Gate for {args.user} over the last {args.window}; labels due {args.label_delay} after")
    reading = reader(args)(window)
    say_all(format_reading(reading))
    return EXIT_CODES[reading.decision.verdict]


def promote_flags(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    parser.add_argument("--revision", required=True, help="what is promoted, e.g. the image tag")
    parser.add_argument("--release", help="Helm release (default: the user id)")
    parser.add_argument(
        "--chart", default="charts/model-monitoring", type=Path, help="chart to upgrade"
    )
    parser.add_argument(
        "--values", type=Path, action="append", default=[], help="values file (repeatable)"
    )
    parser.add_argument(
        "--set-string",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a value every upgrade sets, e.g. the image under test (repeatable)",
    )
    parser.add_argument(
        "--steps", default="10,50", help="canary weights held in turn before 100 (default 10,50)"
    )
    parser.add_argument("--soak", default="10m", help="each step serves this long first")
    parser.add_argument("--interval", default="1m", help="ask the gate this often")
    parser.add_argument(
        "--max-hold", default="30m", help="stop without a verdict after holding this long"
    )
    parser.add_argument("--helm-timeout", default="10m", help="helm upgrade --timeout")
    policy_flags(parser, env)


def plan_of(args: argparse.Namespace) -> Plan:
    try:
        steps = tuple(int(step) for step in args.steps.split(","))
    except ValueError:
        raise OpsError(f"--steps {args.steps}: expected weights like 10,50") from None
    try:
        return Plan(steps, seconds(args.soak), seconds(args.interval), seconds(args.max_hold))
    except ValueError as exc:
        raise OpsError(f"--steps {args.steps}: {exc}") from exc


def judged(read: Callable[[int], GateReading]) -> Callable[[int], Decision]:
    """The gate's decision; Prometheus out of reach is no verdict (a hold), not a failure."""

    def gate(window: int) -> Decision:
        try:
            return read(window).decision
        except PrometheusError as exc:
            return Decision(Verdict.HOLD, (f"no verdict: {exc}",))

    return gate


def run_promote(args: argparse.Namespace, _env: Mapping[str, str]) -> int:
    plan = plan_of(args)
    release = args.release or args.user
    cluster = HelmRelease(
        release,
        args.namespace or f"kubeflow-{args.user}",
        args.chart,
        args.values,
        args.set_string,
        args.helm_timeout,
    )
    phase = Promotion(cluster, judged(reader(args)), plan, say).run(args.revision)
    return PROMOTION_EXIT_CODES[phase]


def serve_gate_flags(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    gate_flags(parser, env)
    parser.add_argument(
        "--soak", default="0", help="each step serves this long before it may advance (default 0)"
    )
    add_flags(parser, env, ENV_PREFIX, LISTEN_FLAGS)


def run_serve_gate(args: argparse.Namespace, _env: Mapping[str, str]) -> int:
    from modelmon.ops.gate_webhook import StepClock, create_gate_app
    from modelmon.serving import configure_logging, serve

    window = checked_window(args)
    read_window = reader(args)
    steps = StepClock(seconds_or_zero(args.soak))
    configure_logging()
    logging.getLogger("modelmon.ops.gate").info(
        "gate for %s over %s on %s:%d", args.user, args.window, args.host, args.port
    )
    return serve(create_gate_app(lambda: read_window(window), steps), args.host, args.port)


COMMANDS = (
    Command(
        "gate",
        "promote (exit 0), hold (3) or roll back (1) the canary, judged from Prometheus",
        run_gate,
        gate_flags,
    ),
    Command(
        "promote",
        "raise the canary step by step on the gate's word: promoted (exit 0), rolled back (1), "
        "held (3); run again to resume",
        run_promote,
        promote_flags,
    ),
    Command(
        "serve-gate",
        "answer Flagger's confirm-traffic-increase and confirm-promotion webhooks with the gate",
        run_serve_gate,
        serve_gate_flags,
    ),
)
