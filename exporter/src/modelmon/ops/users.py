"""A user's values for the attach profile: one release per user, in the user's namespace, scraped
and alerted on by the shared stack. `modelmon-ops new-user` writes them; the chart's own schemas
judge them before anything is written."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelmon.contract import Variant
from modelmon.ops.errors import OpsError

# A namespace is a DNS-1123 label (Kubernetes' own rule for namespace names).
NAMESPACE_PATTERN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
TOKEN_SECRET = "retrain-webhook-token"  # noqa: S105  # nosec B105 - the Secret's name
SLACK_SECRET = "slack-webhook"  # noqa: S105  # nosec B105 - the Secret's name


@dataclass(frozen=True)
class NewUser:
    user_id: str
    namespace: str
    stack_release: str
    stack_namespace: str
    slack_channel: str | None = None
    webhook_url: str | None = None
    retrain: bool = True
    github_repo: str = "model-monitoring/model-monitoring"


def lab_namespace(user_id: str) -> str:
    """The lab's namespace of a user: kubeflow-<user id>."""
    return f"kubeflow-{user_id}"


def namespace_for(user_id: str) -> str:
    """lab_namespace, refused when it is no namespace name."""
    namespace = lab_namespace(user_id)
    if len(namespace) > 63 or not NAMESPACE_PATTERN.fullmatch(namespace):
        raise OpsError(
            f"{namespace!r} is not a namespace name (lower-case letters, digits and '-', at most "
            "63 characters): give one with --namespace"
        )
    return namespace


def values_of(user: NewUser) -> dict[str, Any]:
    if (user.slack_channel is None) == (user.webhook_url is None):
        raise OpsError("name one receiver for the user's alerts: --slack-channel or --webhook-url")
    exporter: dict[str, Any] = {
        "userId": user.user_id,
        "monitoring": {"stackRelease": user.stack_release, "stackNamespace": user.stack_namespace},
        # a variant's values are keyed by its name (the chart's model-exporter.variantNames)
        Variant.CANARY.value: {"enabled": True},
    }
    if user.retrain:
        exporter["retrainWebhook"] = {
            "enabled": True,
            "dryRun": True,
            "tokenSecret": {"name": TOKEN_SECRET, "key": "token"},
            "githubRepo": user.github_repo,
        }
    alerting: dict[str, Any] = {"alertmanagerConfig": {"enabled": True}}
    if user.slack_channel is not None:
        # the chart's default Secret for the Slack URL: slack-webhook, key url
        alerting["slack"] = {"enabled": True, "channel": user.slack_channel}
    else:
        alerting["webhook"] = {"enabled": True, "url": user.webhook_url}
    return {
        "kube-prometheus-stack": {"enabled": False},
        "model-exporter": exporter,
        "alerting": alerting,
    }


def render(user: NewUser, release_chart: str = "charts/model-monitoring") -> str:
    """The values file: how to create its Secrets and install it, then the values."""
    ns = user.namespace
    lines = [
        f"# Attach profile for {user.user_id}: the exporter, its rules and dashboard in {ns},",
        f"# scraped and alerted on by the shared stack (release {user.stack_release} in "
        f"{user.stack_namespace}).",
        f"# Written by `modelmon-ops new-user {user.user_id}`. To install:",
        f"#   kubectl create namespace {ns}",
    ]
    if user.slack_channel is not None:
        lines.append(
            f"#   kubectl -n {ns} create secret generic {SLACK_SECRET} --from-literal=url=<URL>"
        )
    if user.retrain:
        lines += [
            f"#   kubectl -n {ns} create secret generic {TOKEN_SECRET} \\",
            '#     --from-literal=token="$(openssl rand -hex 32)"',
        ]
    lines.append(
        f"#   helm install {user.user_id} {release_chart} -n {ns} "
        f"-f values/users/{user.user_id}.yaml"
    )
    if user.retrain:
        lines += [
            "# The quality alerts also go to the user's retrain webhook, in dry run: it only logs",
            "# what it would do. To dispatch for real, set model-exporter.retrainWebhook.dryRun:",
            "# false and name a Secret holding a GitHub token (actions: write) in",
            "# model-exporter.retrainWebhook.githubTokenSecret:",
            f"#   kubectl -n {ns} create secret generic github-token --from-literal=token=<token>",
        ]
    body = yaml.safe_dump(values_of(user), sort_keys=False, default_flow_style=False)
    return "\n".join(lines) + "\n" + body


def schema_errors(values: dict[str, Any], chart: Path) -> list[str]:
    """The umbrella chart's and the exporter subchart's schemas, applied as helm applies them."""
    try:
        import jsonschema  # only this command needs it: modelmon[users]
    except ImportError as exc:
        raise OpsError("new-user needs jsonschema: pip install 'modelmon[users]'") from exc
    subchart = chart / "charts" / "model-exporter"
    if not subchart.is_dir():
        subchart = chart.parent / "model-exporter"
    errors = []
    for where, schema_file, part in (
        ("", chart / "values.schema.json", values),
        ("model-exporter.", subchart / "values.schema.json", values.get("model-exporter", {})),
    ):
        if not schema_file.is_file():
            raise OpsError(
                f"no values schema at {schema_file}: run from the repository, or name the "
                "umbrella chart with --chart"
            )
        validator = jsonschema.Draft7Validator(json.loads(schema_file.read_text()))
        for error in validator.iter_errors(part):
            path = ".".join(map(str, error.absolute_path))
            errors.append(f"{where}{path}: {error.message}")
    return errors
