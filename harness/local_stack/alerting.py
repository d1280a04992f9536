"""A real Alertmanager for the local stack, configured from the release's AlertmanagerConfigs.

The Prometheus Operator merges each AlertmanagerConfig into the Alertmanager's configuration as
a route under the top one, with a `namespace="<its namespace>"` matcher added, and receivers
renamed `<namespace>/<name>/<receiver>`. This module writes the same tree for the objects the
chart rendered. Receivers that need a Kubernetes Secret (Slack's URL) cannot be resolved here:
they are left out, and the stack says so in its log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
import yaml

from local_stack.manifests import Manifest, of_kind
from local_stack.pods import LOOPBACK
from local_stack.processes import ManagedProcess, Supervisor
from local_stack.toolchain import require

log = logging.getLogger("local_stack")
NULL_RECEIVER = "null"
MATCH_TYPES = {"=": "=", "!=": "!=", "=~": "=~", "!~": "!~"}


def _matcher(spec: dict[str, Any]) -> str:
    return f'{spec["name"]}{MATCH_TYPES[spec.get("matchType", "=")]}"{spec["value"]}"'


def _receiver(prefix: str, spec: dict[str, Any]) -> dict[str, Any]:
    receiver: dict[str, Any] = {"name": f"{prefix}/{spec['name']}"}
    webhooks = []
    for webhook in spec.get("webhookConfigs") or ():
        if "url" not in webhook:
            log.warning("%s: webhook with a urlSecret left out (no Secrets here)", prefix)
            continue
        webhooks.append(
            {"url": webhook["url"], "send_resolved": bool(webhook.get("sendResolved", True))}
        )
    if webhooks:
        receiver["webhook_configs"] = webhooks
    if spec.get("slackConfigs"):
        log.warning("%s: Slack receiver left out (its URL is in a Secret)", prefix)
    return receiver


def _route(prefix: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    route: dict[str, Any] = {
        "receiver": f"{prefix}/{spec['receiver']}",
        "matchers": [f'namespace="{namespace}"', *map(_matcher, spec.get("matchers") or ())],
        "continue": True,
    }
    for source, target in (
        ("groupBy", "group_by"),
        ("groupWait", "group_wait"),
        ("groupInterval", "group_interval"),
        ("repeatInterval", "repeat_interval"),
    ):
        if source in spec:
            route[target] = spec[source]
    return route


def config_from(objects: Sequence[Manifest]) -> dict[str, Any]:
    routes, receivers = [], [{"name": NULL_RECEIVER}]
    for config in of_kind(objects, "AlertmanagerConfig"):
        namespace = config["metadata"].get("namespace", "default")
        prefix = f"{namespace}/{config['metadata']['name']}"
        spec = config["spec"]
        receivers += [_receiver(prefix, r) for r in spec.get("receivers") or ()]
        if "route" in spec:
            routes.append(_route(prefix, namespace, spec["route"]))
    return {
        "route": {"receiver": NULL_RECEIVER, "group_by": ["namespace"], "routes": routes},
        "receivers": receivers,
    }


def start(
    supervisor: Supervisor, config: dict[str, Any], workdir: Path, port: int
) -> ManagedProcess:
    config_file = workdir / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    argv = [
        str(require("alertmanager")),
        f"--config.file={config_file}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        f"--web.listen-address={LOOPBACK}:{port}",
        "--cluster.listen-address=",  # a single instance: no gossip port
        "--log.level=warn",
    ]
    return supervisor.start("alertmanager", argv)


def ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/-/ready", timeout=2).status_code == 200
    except requests.RequestException:
        return False
