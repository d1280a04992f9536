"""modelmon-ops: one command line for the operator's loop around a deployed model.

Every subcommand takes the same target flags (--prometheus-url, --user, --namespace, --url), each
also read from MODELMON_OPS_<FLAG>. Failures end in one line on stderr: exit 2 for an error, and
for ab-test 1 when the canary is worse and 3 when the sample is too small for a verdict.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence

from modelmon.config import add_env_option, non_negative_float, port_number, positive_int
from modelmon.ops import commands
from modelmon.ops.errors import OpsError
from modelmon.ops.rows import DRIFT_LEVELS

ENV_PREFIX = "MODELMON_OPS_"
USER_PATTERN = re.compile(r"[a-z0-9]([-a-z0-9_]*[a-z0-9])?")


def user_id(text: str) -> str:
    if not USER_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a user id like user07")
    return text


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    target = argparse.ArgumentParser(add_help=False)
    group = target.add_argument_group("target")

    def option(
        parser: argparse.ArgumentParser | argparse._ArgumentGroup,
        flag: str,
        help_text: str,
        default: str,
        **kwargs: object,
    ) -> None:
        add_env_option(parser, env, ENV_PREFIX, flag, help_text, default, **kwargs)  # type: ignore[arg-type]

    option(group, "--prometheus-url", "Prometheus base URL", "http://127.0.0.1:9090")
    option(group, "--user", "the release's user_id label", "user01", type=user_id)
    option(group, "--namespace", "only series from this namespace (default: any)", "")
    option(group, "--url", "the router's (or an exporter's) base URL", "http://127.0.0.1:8080")

    retrain = argparse.ArgumentParser(add_help=False)
    rgroup = retrain.add_argument_group("retrain decision")
    option(
        rgroup,
        "--max-mae",
        "retrain when a variant's MAE is above",
        "0.45",
        type=non_negative_float,
    )
    option(rgroup, "--min-r2", "retrain when a variant's R² is below", "0.70", type=float)
    option(
        rgroup,
        "--max-drift",
        "retrain when the drift score is above",
        "0.25",
        type=non_negative_float,
    )
    option(rgroup, "--cooldown", "at most one retrain per user within this time", "1h")
    option(
        rgroup,
        "--state-file",
        "where the cooldown remembers the last retrain",
        commands.default_state_file(),
    )
    option(
        rgroup,
        "--github-repo",
        "owner/name of the repository to dispatch to (also GITHUB_REPO)",
        env.get("GITHUB_REPO", ""),
    )
    option(
        rgroup,
        "--github-api-url",
        "GitHub API base URL (also GITHUB_API_URL)",
        env.get("GITHUB_API_URL", "https://api.github.com"),
    )
    option(rgroup, "--workflow", "workflow file to dispatch", "retrain-model.yaml")
    option(rgroup, "--ref", "git ref the workflow runs on", "main")
    rgroup.add_argument(
        "--no-dry-run",
        action="store_true",
        help="really dispatch (default: only say what would happen)",
    )

    parser = argparse.ArgumentParser(
        prog="modelmon-ops",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="The GitHub token is read from GITHUB_TOKEN (never a flag, so it stays out of "
        "shell history and process lists).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    load = sub.add_parser("load", parents=[target], help="traffic like the lab's Locust user")
    load.add_argument(
        "--rate", type=positive_float, default=10.0, help="requests per second (default 10)"
    )
    load.add_argument("--duration", default="60s", help="how long, e.g. 30s, 5m (default 60s)")
    load.add_argument(
        "--concurrency", type=positive_int, default=8, help="parallel workers (default 8)"
    )
    load.add_argument(
        "--mix", default="1:10:2", help="health:predict:bad-input weights (default 1:10:2)"
    )
    load.add_argument(
        "--feedback-delay",
        type=non_negative_float,
        default=0.0,
        help="seconds before ground truth is posted (default 0)",
    )
    load.add_argument("--no-feedback", action="store_true", help="post no ground truth")
    load.add_argument(
        "--level",
        choices=list(DRIFT_LEVELS),
        default="none",
        help="input drift level (default none)",
    )
    load.add_argument(
        "--users",
        type=int,
        default=0,
        help="send X-User-ID from this many simulated users (sticky split)",
    )
    load.add_argument("--seed", type=int, default=1)

    drift = sub.add_parser(
        "simulate-drift", parents=[target], help="drifted traffic; MAE and R² before and after"
    )
    which = drift.add_mutually_exclusive_group(required=True)
    which.add_argument("--level", choices=[level for level in DRIFT_LEVELS if level != "none"])
    which.add_argument(
        "--reset", action="store_true", help="send undrifted traffic, so the windows recover"
    )
    drift.add_argument(
        "--rate", type=positive_float, default=10.0, help="predictions per second (default 10)"
    )
    drift.add_argument(
        "--duration",
        default="60s",
        help="how long (default 60s; the alert's `for` needs it to last)",
    )
    drift.add_argument("--concurrency", type=positive_int, default=4)
    drift.add_argument("--seed", type=int, default=7)

    ab = sub.add_parser(
        "ab-test", parents=[target], help="is the canary's MAE different from stable's?"
    )
    ab.add_argument("--window", default="1h", help="compare over this range, e.g. 30m (default 1h)")
    ab.add_argument(
        "--min-samples",
        type=positive_int,
        default=200,
        help="feedback samples each variant needs (default 200)",
    )
    ab.add_argument(
        "--alpha", type=positive_float, default=0.05, help="significance level (default 0.05)"
    )

    trigger = sub.add_parser(
        "trigger-retrain",
        parents=[target, retrain],
        help="decide on a retrain, and ask GitHub Actions for it",
    )
    trigger.add_argument(
        "--check-drift", action="store_true", help="decide from MAE, R² and drift in Prometheus"
    )
    trigger.add_argument(
        "--force-trigger",
        action="store_true",
        help="retrain whatever the measures and the cooldown say",
    )

    serve = sub.add_parser(
        "serve-webhook",
        parents=[target, retrain],
        help="take Alertmanager's quality alerts (bearer token) down the same path",
    )
    option(serve, "--host", "address to listen on", "0.0.0.0")  # noqa: S104  # nosec B104 - the pod IP
    option(serve, "--port", "port to listen on", "8080", type=port_number)
    option(serve, "--token-file", "file holding the bearer token Alertmanager must send", "")

    sub.add_parser(
        "status",
        parents=[target],
        help="quality per variant and the alert rules now; exit 1 when an alert fires",
    )

    report = sub.add_parser(
        "report", parents=[target], help="plots, alert states and drift on one Markdown page"
    )
    report.add_argument("--since", default="1h", help="time range up to now, e.g. 30m (default 1h)")
    report.add_argument(
        "--out", default="report", help="folder for report.md and the PNGs (default ./report)"
    )
    report.add_argument(
        "--rate-window", default="1m", help="range of rate() in the plots (default 1m)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(os.environ)
    args = parser.parse_args(argv)
    try:
        return commands.run(args, os.environ)
    except OpsError as exc:
        print(f"modelmon-ops {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"modelmon-ops {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
