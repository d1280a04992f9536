"""load and simulate-drift: traffic with ground truth, through the router."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from modelmon.flags import non_negative_float, positive_float, positive_int
from modelmon.ops.commands.base import Command, progress_bar, say, say_all, scope_of, url_of
from modelmon.ops.durations import seconds
from modelmon.ops.load import LoadPlan, Mix, run_load
from modelmon.ops.prometheus import PrometheusAPI
from modelmon.ops.rows import DRIFT_LEVELS
from modelmon.ops.simulate import reset, simulate


def load_flags(parser: argparse.ArgumentParser, _env: Mapping[str, str]) -> None:
    add = parser.add_argument
    add("--rate", type=positive_float, default=10.0, help="requests per second (default 10)")
    add("--duration", default="60s", help="how long, e.g. 30s, 5m (default 60s)")
    add("--concurrency", type=positive_int, default=8, help="parallel workers (default 8)")
    add("--mix", default="1:10:2", help="health:predict:bad-input weights (default 1:10:2)")
    add(
        "--feedback-delay",
        type=non_negative_float,
        default=0.0,
        help="seconds before ground truth is posted (default 0)",
    )
    add("--no-feedback", action="store_true", help="post no ground truth")
    add("--level", choices=list(DRIFT_LEVELS), default="none", help="input drift (default none)")
    add(
        "--users",
        type=int,
        default=0,
        help="send X-User-ID from this many simulated users (sticky split)",
    )
    add("--seed", type=int, default=1)


def run_load_command(args: argparse.Namespace, _env: Mapping[str, str]) -> int:
    plan = LoadPlan(
        url=url_of(args),
        rate=args.rate,
        duration=seconds(args.duration),
        concurrency=args.concurrency,
        mix=Mix.parse(args.mix),
        feedback=not args.no_feedback,
        feedback_delay=args.feedback_delay,
        level=args.level,
        seed=args.seed,
        users=max(0, args.users),
    )
    with progress_bar(f"load on {plan.url}", plan.total) as advance:
        result = run_load(plan, advance)
    say_all(result.summary())
    return 0


RESET_RATE = 50.0


def simulate_drift_flags(parser: argparse.ArgumentParser, _env: Mapping[str, str]) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--level",
        "--drift-level",
        dest="level",
        choices=[level for level in DRIFT_LEVELS if level != "none"],
        help="how far the inputs drift (--drift-level: the lab's name)",
    )
    which.add_argument(
        "--reset",
        action="store_true",
        help="send undrifted traffic until the quality and drift windows hold none of the "
        "drifted rows, and no quality alert's condition holds",
    )
    parser.add_argument(
        "--rate",
        type=positive_float,
        help=f"predictions per second (default 10; {RESET_RATE:g} with --reset)",
    )
    parser.add_argument(
        "--duration",
        default="60s",
        help="how long to drift (default 60s; the alert's `for` needs it); --reset sends as many "
        "as the windows hold",
    )
    parser.add_argument("--concurrency", type=positive_int, default=4)
    parser.add_argument("--seed", type=int, default=7)


def run_simulate_drift(args: argparse.Namespace, _env: Mapping[str, str]) -> int:
    rate = args.rate or (RESET_RATE if args.reset else 10.0)

    def plan(level: str, duration: float) -> LoadPlan:
        return LoadPlan(
            url=url_of(args),
            rate=rate,
            duration=duration,
            concurrency=args.concurrency,
            mix=Mix(health=0, predict=1, bad=0),
            level=level,
            seed=args.seed,
        )

    api = PrometheusAPI(args.prometheus_url)
    api.query("vector(1)")  # fail now, not after the traffic, when Prometheus is unreachable
    if args.reset:
        reset(api, scope_of(args), lambda rows: plan("none", rows / rate), say, progress_bar)
        return 0
    drifted = plan(args.level, seconds(args.duration))
    with progress_bar(f"{args.level} drift for {args.user}", drifted.total) as advance:
        simulate(api, scope_of(args), drifted, say, advance)
    return 0


COMMANDS = (
    Command("load", "traffic like the lab's Locust user", run_load_command, load_flags),
    Command(
        "simulate-drift",
        "drifted traffic; MAE and R² before and after",
        run_simulate_drift,
        simulate_drift_flags,
    ),
)
