"""new-user: a user's values for the attach profile, from a user id and a receiver."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

import yaml

from modelmon.flags import Flag, add_flags
from modelmon.ops.commands.base import ENV_PREFIX, Command, say, user_id
from modelmon.ops.errors import OpsError
from modelmon.ops.users import NewUser, namespace_for, render, schema_errors


def new_user_flags(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    parser.add_argument("user_id", type=user_id, help="the user's id, e.g. user08")
    receiver = parser.add_mutually_exclusive_group(required=True)
    receiver.add_argument("--slack-channel", help="the Slack channel of the user's alerts")
    receiver.add_argument("--webhook-url", help="an Alertmanager webhook for the user's alerts")
    flags = (
        Flag("--namespace", "the user's namespace (default: kubeflow-<user id>)", ""),
        Flag("--stack-release", "release name of the shared kube-prometheus-stack", "monitoring"),
        Flag("--stack-namespace", "namespace of the shared stack", "monitoring"),
        Flag(
            "--chart",
            "the umbrella chart, whose schemas judge the values",
            "charts/model-monitoring",
        ),
        Flag("--output", "where to write (default: values/users/<user id>.yaml; - for stdout)", ""),
    )
    add_flags(parser, env, ENV_PREFIX, flags)
    parser.add_argument(
        "--no-retrain", action="store_true", help="no retrain webhook for the user's alerts"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")


def run_new_user(args: argparse.Namespace, _env: Mapping[str, str]) -> int:
    user = NewUser(
        user_id=args.user_id,
        namespace=args.namespace or namespace_for(args.user_id),
        stack_release=args.stack_release,
        stack_namespace=args.stack_namespace,
        slack_channel=args.slack_channel,
        webhook_url=args.webhook_url,
        retrain=not args.no_retrain,
    )
    text = render(user, args.chart)
    errors = schema_errors(yaml.safe_load(text), Path(args.chart))
    if errors:
        raise OpsError("the chart's schema refuses these values: " + "; ".join(errors))
    if args.output == "-":
        print(text, end="")
        return 0
    output = Path(args.output or f"values/users/{user.user_id}.yaml")
    if output.exists() and not args.force:
        raise OpsError(f"{output} exists: pass --force to overwrite it")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    say(f"wrote {output}; install it with:")
    say(f"  helm install {user.user_id} {args.chart} -n {user.namespace} -f {output}")
    return 0


COMMANDS = (
    Command(
        "new-user",
        "write a user's values for the attach profile, checked by the chart's schemas",
        run_new_user,
        new_user_flags,
        targets=False,
    ),
)
