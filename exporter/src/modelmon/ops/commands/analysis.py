"""ab-test, status and report: what Prometheus says about one user's models."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from modelmon.flags import Flag, add_flags, positive_float, positive_int
from modelmon.ops import abtest
from modelmon.ops.commands.base import ENV_PREFIX, Command, progress_bar, say, say_all, scope_of
from modelmon.ops.durations import seconds
from modelmon.ops.prometheus import PrometheusAPI
from modelmon.ops.readings import alert_conditions, format_conditions, format_quality, read_quality
from modelmon.ops.report import report_parts, write_report


def ab_test_flags(parser: argparse.ArgumentParser, _env: Mapping[str, str]) -> None:
    parser.add_argument(
        "--window", default="1h", help="compare over this range, e.g. 30m (default 1h)"
    )
    parser.add_argument(
        "--min-samples",
        type=positive_int,
        default=200,
        help="feedback samples each variant needs (default 200)",
    )
    parser.add_argument(
        "--alpha", type=positive_float, default=0.05, help="significance level (default 0.05)"
    )


def run_ab_test(args: argparse.Namespace, _env: Mapping[str, str]) -> int:
    api = PrometheusAPI(args.prometheus_url)
    window = args.window
    seconds(window)  # refuse a bad window before asking Prometheus
    say(f"A/B over the last {window} for {args.user}: stable vs canary, on mean absolute error")
    try:
        comparison = abtest.compare_from_prometheus(
            api, scope_of(args), window, args.min_samples, args.alpha
        )
    except abtest.InsufficientSample as exc:
        say(f"verdict: none, {exc}")
        return 3
    say_all(abtest.format_comparison(comparison))
    return 1 if comparison.verdict == "canary worse" else 0


def run_status(args: argparse.Namespace, _env: Mapping[str, str]) -> int:
    api = PrometheusAPI(args.prometheus_url)
    scope = scope_of(args)
    say(f"Quality of {args.user}:")
    say_all(format_quality(read_quality(api, scope)))
    conditions = alert_conditions(api, scope)
    say("Alerts:")
    say_all(format_conditions(conditions))
    firing = [c.name for c in conditions if c.state == "firing"]
    if firing:
        say(f"firing: {', '.join(firing)}")
        return 1
    return 0


REPORT_FLAGS = (
    Flag("--since", "time range up to now, e.g. 30m (default 1h)", "1h"),
    Flag("--rate-window", "range of rate() in the plots (default 1m)", "1m"),
)


def report_flags(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    add_flags(parser, env, ENV_PREFIX, REPORT_FLAGS)
    parser.add_argument(
        "--out",
        default="report",
        help="folder for report.md, report.html and the PNGs (default ./report)",
    )
    parser.add_argument(
        "--all-users",
        action="store_true",
        help="also compare every user Prometheus has model series of, side by side "
        "(the other sections stay those of --user)",
    )


def run_report(args: argparse.Namespace, _env: Mapping[str, str]) -> int:
    api = PrometheusAPI(args.prometheus_url)
    since = seconds(args.since)
    seconds(args.rate_window)
    with progress_bar("plotting", report_parts(args.all_users)) as advance:
        path = write_report(
            api,
            scope_of(args),
            since,
            Path(args.out),
            args.rate_window,
            lambda _name: advance(),
            all_users=args.all_users,
        )
    say(f"wrote {path} and {path.with_suffix('.html')}")
    return 0


COMMANDS = (
    Command("ab-test", "is the canary's MAE different from stable's?", run_ab_test, ab_test_flags),
    Command(
        "status",
        "quality per variant and the alert rules now; exit 1 when an alert fires",
        run_status,
    ),
    Command(
        "report",
        "plots, alert timeline, drift and every user on one page (Markdown and HTML)",
        run_report,
        report_flags,
    ),
)
