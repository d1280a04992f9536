"""A real Alertmanager for the local stack, configured from the release's AlertmanagerConfigs.

The Prometheus Operator merges each AlertmanagerConfig into the Alertmanager's configuration as
a route under the top one, with a `namespace="<its namespace>"` matcher added, and receivers
renamed `<namespace>/<name>/<receiver>`; child routes (`routes`, with their matchers and
`continue`) are kept in order under it. This module writes the same tree for the objects the
chart rendered. Integrations that need a Kubernetes Secret (Slack's URL, a webhook's URL or
credentials) cannot be resolved here: they are left out, and the stack says so in its log. Their
receiver stays, without integrations, so that every route still names a receiver and the rest
of the tree delivers as it would in a cluster.
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


# Fields of an httpConfig that refer to a Secret (SecretKeySelectors in the CRD).
SECRET_REFERENCES = frozenset(
    {"credentials", "bearerTokenSecret", "username", "password", "clientSecret", "keySecret"}
)


def _secret_references(value: Any, path: str = "httpConfig") -> list[str]:
    """Dotted paths of the Secret references in an httpConfig (ca.secret and cert.secret too)."""
    if not isinstance(value, dict):
        return []
    found = []
    for key, child in value.items():
        if key in SECRET_REFERENCES or (key == "secret" and isinstance(child, dict)):
            found.append(f"{path}.{key}")
        else:
            found += _secret_references(child, f"{path}.{key}")
    return found


def _receiver(prefix: str, spec: dict[str, Any]) -> dict[str, Any]:
    name = f"{prefix}/{spec['name']}"
    receiver: dict[str, Any] = {"name": name}
    webhooks = []
    for webhook in spec.get("webhookConfigs") or ():
        if "url" not in webhook:
            log.warning("%s: webhook with a urlSecret left out (no Secrets here)", name)
            continue
        references = _secret_references(webhook.get("httpConfig"))
        if references:
            log.warning(
                "%s: webhook %s left out (%s in a Secret; no Secrets here)",
                name,
                webhook["url"],
                ", ".join(references),
            )
            continue
        webhooks.append(
            {"url": webhook["url"], "send_resolved": bool(webhook.get("sendResolved", True))}
        )
    if webhooks:
        receiver["webhook_configs"] = webhooks
    if spec.get("slackConfigs"):
        log.warning("%s: Slack receiver left out (its URL is in a Secret)", name)
    return receiver


def _route(prefix: str, spec: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """One route and its children. The operator adds the namespace matcher and forces
    `continue` on the top route only (`namespace` given); child routes keep their own."""
    route: dict[str, Any] = {}
    if spec.get("receiver"):  # a child route without one inherits its parent's
        route["receiver"] = f"{prefix}/{spec['receiver']}"
    matchers = [_matcher(m) for m in spec.get("matchers") or ()]
    if namespace is not None:
        matchers.insert(0, f'namespace="{namespace}"')
    if matchers:
        route["matchers"] = matchers
    route["continue"] = True if namespace is not None else bool(spec.get("continue", False))
    for source, target in (
        ("groupBy", "group_by"),
        ("groupWait", "group_wait"),
        ("groupInterval", "group_interval"),
        ("repeatInterval", "repeat_interval"),
    ):
        if source in spec:
            route[target] = spec[source]
    if spec.get("routes"):
        route["routes"] = [_route(prefix, child) for child in spec["routes"]]
    return route


def config_from(objects: Sequence[Manifest]) -> dict[str, Any]:
    routes, receivers = [], [{"name": NULL_RECEIVER}]
    for config in of_kind(objects, "AlertmanagerConfig"):
        namespace = config["metadata"].get("namespace", "default")
        prefix = f"{namespace}/{config['metadata']['name']}"
        spec = config["spec"]
        receivers += [_receiver(prefix, r) for r in spec.get("receivers") or ()]
        if "route" in spec:
            routes.append(_route(prefix, spec["route"], namespace))
    return {
        "route": {"receiver": NULL_RECEIVER, "group_by": ["namespace"], "routes": routes},
        "receivers": receivers,
    }


def write_config(config: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def start(
    supervisor: Supervisor, config: dict[str, Any], workdir: Path, port: int
) -> ManagedProcess:
    config_file = write_config(config, workdir / "alertmanager.yml")
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
