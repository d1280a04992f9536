"""trigger-retrain and serve-webhook: the quality alerts that ask for a retrain, one decision for
both (modelmon.ops.retrain), the cooldown, and the GitHub workflow dispatch."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry

from modelmon.flags import Flag, add_flags
from modelmon.ops.commands.base import (
    ENV_PREFIX,
    LISTEN_FLAGS,
    Command,
    default_state_file,
    say,
    say_all,
    scope_of,
)
from modelmon.ops.cooldown import Cooldown
from modelmon.ops.durations import seconds
from modelmon.ops.errors import OpsError
from modelmon.ops.github import GITHUB_API, WORKFLOW, GitHubWorkflow
from modelmon.ops.prometheus import PrometheusAPI
from modelmon.ops.readings import format_quality, read_quality
from modelmon.ops.retrain import act, decide, retrain_alerts


def retrain_flags(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    group = parser.add_argument_group("retrain")
    flags = (
        Flag("--cooldown", "at most one retrain per user within this time", "1h"),
        Flag("--state-file", "where the cooldown remembers the last retrain", default_state_file()),
        Flag(
            "--github-repo",
            "owner/name of the repository to dispatch to (also GITHUB_REPO)",
            env.get("GITHUB_REPO", ""),
        ),
        Flag(
            "--github-api-url",
            "GitHub API base URL (also GITHUB_API_URL)",
            env.get("GITHUB_API_URL", GITHUB_API),
        ),
        Flag("--workflow", "workflow file to dispatch", WORKFLOW),
        Flag("--ref", "git ref the workflow runs on", "main"),
    )
    add_flags(group, env, ENV_PREFIX, flags)
    group.add_argument(
        "--no-dry-run",
        action="store_true",
        help="really dispatch (default: only say what would happen)",
    )


def workflow_of(args: argparse.Namespace, env: Mapping[str, str]) -> GitHubWorkflow | None:
    """The dispatch target; None for a dry run that has no repository configured."""
    if not args.no_dry_run and not args.github_repo:
        return None
    if not args.github_repo:
        raise OpsError("--no-dry-run needs the repository: set GITHUB_REPO or --github-repo")
    token = env.get("GITHUB_TOKEN", "")
    if args.no_dry_run and not token:
        raise OpsError("--no-dry-run needs a token in GITHUB_TOKEN (actions: write)")
    return GitHubWorkflow(args.github_repo, token, args.github_api_url, args.workflow, args.ref)


def cooldown_of(args: argparse.Namespace) -> Cooldown:
    return Cooldown(Path(args.state_file), seconds(args.cooldown))


def trigger_retrain_flags(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    retrain_flags(parser, env)
    parser.add_argument(
        "--check-drift",
        action="store_true",
        help="retrain when one of the user's quality alerts is active in Prometheus",
    )
    parser.add_argument(
        "--force-trigger",
        action="store_true",
        help="retrain whatever the alerts and the cooldown say",
    )


def lab_lines(detected: bool, drift_score: float | None) -> list[str]:
    """The two lines the lab's trigger prints: whether a retrain is called for, and the drift
    score (here the worst variant's PSI; "n/a" before Prometheus has one)."""
    score = "n/a" if drift_score is None else f"{drift_score:.4f}"
    return [f"Detected: {detected}", f"Score: {score}"]


def run_trigger_retrain(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if not (args.check_drift or args.force_trigger):
        raise OpsError("say what to decide on: --check-drift, or --force-trigger")
    workflow = workflow_of(args, env)
    cooldown = cooldown_of(args)
    api = PrometheusAPI(args.prometheus_url)
    scope = scope_of(args)
    quality = read_quality(api, scope)
    say(f"Quality of {args.user} in Prometheus:")
    say_all(format_quality(quality))
    alerts = retrain_alerts(a for a in api.alerts() if scope.owns(a.get("labels", {})))
    decision = decide(alerts)
    say("Quality alerts (their thresholds are the chart's rules.alerts values):")
    say_all([f"  {alert.state:<8} {alert.reason()}" for alert in alerts] or ["  none active"])
    say_all(lab_lines(decision.retrain, quality.worst().get("drift")))
    outcome = act(
        decision,
        args.user,
        workflow=workflow,
        cooldown=cooldown,
        dry_run=not args.no_dry_run,
        force=args.force_trigger,
        drift_score=quality.worst().get("drift"),
    )
    say(outcome.message)
    return 0


def serve_webhook_flags(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    retrain_flags(parser, env)
    flags = (
        *LISTEN_FLAGS,
        Flag("--token-file", "file holding the bearer token Alertmanager must send", ""),
    )
    add_flags(parser, env, ENV_PREFIX, flags)


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
        cooldown=cooldown_of(args),
        workflow=workflow_of(args, env),
        dry_run=not args.no_dry_run,
    )
    mode = "dispatching" if args.no_dry_run else "dry run"
    logging.getLogger("modelmon.ops.webhook").info(
        "webhook on %s:%d (%s)", args.host, args.port, mode
    )
    return serve(create_webhook_app(settings, CollectorRegistry()), args.host, args.port)


COMMANDS = (
    Command(
        "trigger-retrain",
        "decide on a retrain from the quality alerts, and ask GitHub Actions for it",
        run_trigger_retrain,
        trigger_retrain_flags,
    ),
    Command(
        "serve-webhook",
        "take Alertmanager's quality alerts (bearer token) down the same path",
        run_serve_webhook,
        serve_webhook_flags,
        targets=False,
    ),
)
