"""What each modelmon-ops subcommand does with its parsed flags."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from modelmon.ops import abtest
from modelmon.ops.durations import seconds
from modelmon.ops.errors import OpsError
from modelmon.ops.load import LoadPlan, Mix, run_load
from modelmon.ops.prometheus import PrometheusAPI, Scope
from modelmon.ops.readings import (
    alert_conditions,
    format_conditions,
    format_quality,
    read_quality,
)
from modelmon.ops.report import panels, write_report
from modelmon.ops.retrain import Cooldown, GitHubWorkflow, Thresholds, act, decide
from modelmon.ops.simulate import simulate

stderr = Console(stderr=True)


def default_state_file() -> str:
    return str(Path.home() / ".cache" / "modelmon-ops" / "retrain-cooldown.json")


def say(line: str) -> None:
    print(line, flush=True)


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr (drawn only on a terminal); yields the per-item callback."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda: progress.advance(task)


def _scope(args: argparse.Namespace) -> Scope:
    return Scope(args.user, args.namespace or None)


def _url(args: argparse.Namespace) -> str:
    url = str(args.url).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise OpsError(f"--url {args.url!r}: must be an http(s) URL")
    return url


def run_load_command(args: argparse.Namespace) -> int:
    plan = LoadPlan(
        url=_url(args),
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
    for line in result.summary():
        say(line)
    return 0


def run_simulate_drift(args: argparse.Namespace) -> int:
    level = "none" if args.reset else args.level
    plan = LoadPlan(
        url=_url(args),
        rate=args.rate,
        duration=seconds(args.duration),
        concurrency=args.concurrency,
        mix=Mix(health=0, predict=1, bad=0),
        level=level,
        seed=args.seed,
    )
    api = PrometheusAPI(args.prometheus_url)
    api.query("vector(1)")  # fail now, not after the traffic, when Prometheus is unreachable
    with progress_bar(f"{level} drift for {args.user}", plan.total) as advance:
        simulate(api, _scope(args), plan, say, advance)
    return 0


def run_ab_test(args: argparse.Namespace) -> int:
    api = PrometheusAPI(args.prometheus_url)
    window = args.window
    seconds(window)  # refuse a bad window before asking Prometheus
    say(f"A/B over the last {window} for {args.user}: stable vs canary, on mean absolute error")
    try:
        comparison = abtest.compare_from_prometheus(
            api, _scope(args), window, args.min_samples, args.alpha
        )
    except abtest.InsufficientSample as exc:
        say(f"verdict: none, {exc}")
        return 3
    for line in abtest.format_comparison(comparison):
        say(line)
    return 1 if comparison.verdict == "canary worse" else 0


def _thresholds(args: argparse.Namespace) -> Thresholds:
    return Thresholds(max_mae=args.max_mae, min_r2=args.min_r2, max_drift=args.max_drift)


def _workflow(args: argparse.Namespace, env: Mapping[str, str]) -> GitHubWorkflow | None:
    """The dispatch target; None for a dry run that has no repository configured."""
    if not args.no_dry_run and not args.github_repo:
        return None
    if not args.github_repo:
        raise OpsError("--no-dry-run needs the repository: set GITHUB_REPO or --github-repo")
    token = env.get("GITHUB_TOKEN", "")
    if args.no_dry_run and not token:
        raise OpsError("--no-dry-run needs a token in GITHUB_TOKEN (actions: write)")
    return GitHubWorkflow(args.github_repo, token, args.github_api_url, args.workflow, args.ref)


def run_trigger_retrain(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if not (args.check_drift or args.force_trigger):
        raise OpsError("say what to decide on: --check-drift, or --force-trigger")
    workflow = _workflow(args, env)
    cooldown = Cooldown(Path(args.state_file), seconds(args.cooldown))
    api = PrometheusAPI(args.prometheus_url)
    scope = _scope(args)
    quality = read_quality(api, scope)
    say(f"Quality of {args.user} in Prometheus:")
    for line in format_quality(quality):
        say(line)
    decision = decide(quality, _thresholds(args))
    outcome = act(
        decision,
        args.user,
        workflow=workflow,
        cooldown=cooldown,
        dry_run=not args.no_dry_run,
        force=args.force_trigger,
    )
    say(outcome.message)
    return 0


def run_serve_webhook(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from modelmon.ops.webhook import WebhookSettings, create_webhook_app
    from modelmon.serving import configure_logging, serve

    if not args.token_file:
        raise OpsError("--token-file is required: the bearer token Alertmanager sends")
    try:
        token = Path(args.token_file).read_text().strip()
    except OSError as exc:
        raise OpsError(f"--token-file {args.token_file}: {exc.strerror}") from exc
    if len(token) < 16:
        raise OpsError(f"--token-file {args.token_file}: the token must be at least 16 characters")
    configure_logging()
    settings = WebhookSettings(
        token=token,
        prometheus=PrometheusAPI(args.prometheus_url),
        thresholds=_thresholds(args),
        cooldown=Cooldown(Path(args.state_file), seconds(args.cooldown)),
        workflow=_workflow(args, env),
        dry_run=not args.no_dry_run,
    )
    mode = "dispatching" if args.no_dry_run else "dry run"
    logging.getLogger("modelmon.ops.webhook").info(
        "webhook on %s:%d (%s), Prometheus %s", args.host, args.port, mode, args.prometheus_url
    )
    return serve(create_webhook_app(settings, CollectorRegistry()), args.host, args.port)


def run_status(args: argparse.Namespace) -> int:
    api = PrometheusAPI(args.prometheus_url)
    scope = _scope(args)
    say(f"Quality of {args.user}:")
    for line in format_quality(read_quality(api, scope)):
        say(line)
    conditions = alert_conditions(api, scope)
    say("Alerts:")
    for line in format_conditions(conditions):
        say(line)
    firing = [c.name for c in conditions if c.state == "firing"]
    if firing:
        say(f"firing: {', '.join(firing)}")
        return 1
    return 0


def run_report(args: argparse.Namespace) -> int:
    api = PrometheusAPI(args.prometheus_url)
    since = seconds(args.since)
    seconds(args.rate_window)
    scope = _scope(args)
    with progress_bar("plotting", len(panels(scope, args.rate_window))) as advance:
        path = write_report(
            api, scope, since, Path(args.out), args.rate_window, lambda _name: advance()
        )
    say(f"wrote {path}")
    return 0


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if args.command == "load":
        return run_load_command(args)
    if args.command == "simulate-drift":
        return run_simulate_drift(args)
    if args.command == "ab-test":
        return run_ab_test(args)
    if args.command == "trigger-retrain":
        return run_trigger_retrain(args, env)
    if args.command == "status":
        return run_status(args)
    if args.command == "serve-webhook":
        return run_serve_webhook(args, env)
    return run_report(args)
