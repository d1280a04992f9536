"""A real Alertmanager for the local stack, configured from the release's AlertmanagerConfigs.

The Prometheus Operator merges each AlertmanagerConfig into the Alertmanager's configuration as
a route under the top one, with a `namespace="<its namespace>"` matcher added, and receivers
renamed `<namespace>/<name>/<receiver>`; child routes (`routes`, with their matchers and
`continue`) are kept in order under it. This module writes the same tree for the objects the
chart rendered. A webhook's bearer token (`httpConfig.authorization.credentials`) comes from
the Secrets the stack was given, written to a file Alertmanager reads; a webhook URL that names
a Service of the release goes to that Service's local address. Integrations that need any other
Secret (Slack's URL, a webhook's URL), or a Secret the stack was not given, are left out, and
the stack says so in its log. Their receiver stays, without integrations, so that every route
still names a receiver and the rest of the tree delivers as it would in a cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from local_stack.manifests import Manifest, of_kind
from local_stack.pods import LOOPBACK, map_services, write_atomically
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


@dataclass(frozen=True)
class Resolver:
    """What a cluster would resolve for Alertmanager: Secrets and the release's Services."""

    # namespace -> name -> key -> value: an AlertmanagerConfig names Secrets of its namespace.
    secrets: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    secrets_dir: Path | None = None
    services: Mapping[str, str] = field(default_factory=dict)

    def bearer_file(self, reference: dict[str, Any], namespace: str) -> Path | None:
        """The Secret key's value written to a file Alertmanager reads; None if not given."""
        secret = self.secrets.get(namespace, {}).get(reference.get("name", ""), {})
        value = secret.get(reference.get("key", ""))
        if value is None or self.secrets_dir is None:
            return None
        self.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.secrets_dir / f"{namespace}.{reference['name']}.{reference['key']}"
        write_atomically(path, value, mode=0o600)
        return path


def _http_config(
    name: str, url: str, http_config: dict[str, Any] | None, resolver: Resolver, namespace: str
) -> dict[str, Any] | None:
    """The webhook's http_config, or None when it needs what the stack cannot give."""
    config = dict(http_config or {})
    authorization = config.pop("authorization", None)
    references = _secret_references(config)
    if authorization:
        credentials = authorization.get("credentials")
        token_file = resolver.bearer_file(credentials, namespace) if credentials else None
        if credentials and token_file is None:
            references.append("httpConfig.authorization.credentials")
    if references:
        log.warning(
            "%s: webhook %s left out (%s in a Secret the stack was not given)",
            name,
            url,
            ", ".join(references),
        )
        return None
    if not authorization:
        return {}
    return {
        "authorization": {
            "type": authorization.get("type", "Bearer"),
            "credentials_file": str(token_file),
        }
    }


def _receiver(
    prefix: str, spec: dict[str, Any], resolver: Resolver, namespace: str
) -> dict[str, Any]:
    name = f"{prefix}/{spec['name']}"
    receiver: dict[str, Any] = {"name": name}
    webhooks = []
    for webhook in spec.get("webhookConfigs") or ():
        if "url" not in webhook:
            log.warning("%s: webhook with a urlSecret left out (no Secrets here)", name)
            continue
        http_config = _http_config(
            name, webhook["url"], webhook.get("httpConfig"), resolver, namespace
        )
        if http_config is None:
            continue
        local: dict[str, Any] = {
            "url": map_services(webhook["url"], resolver.services),
            "send_resolved": bool(webhook.get("sendResolved", True)),
        }
        if http_config:
            local["http_config"] = http_config
        webhooks.append(local)
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


def config_from(objects: Sequence[Manifest], resolver: Resolver | None = None) -> dict[str, Any]:
    resolver = resolver or Resolver()
    routes, receivers = [], [{"name": NULL_RECEIVER}]
    for config in of_kind(objects, "AlertmanagerConfig"):
        namespace = config["metadata"].get("namespace", "default")
        prefix = f"{namespace}/{config['metadata']['name']}"
        spec = config["spec"]
        receivers += [
            _receiver(prefix, r, resolver, namespace) for r in spec.get("receivers") or ()
        ]
        if "route" in spec:
            routes.append(_route(prefix, spec["route"], namespace))
    return {
        "route": {"receiver": NULL_RECEIVER, "group_by": ["namespace"], "routes": routes},
        "receivers": receivers,
    }


def write_config(config: dict[str, Any], path: Path) -> bool:
    """Writes the configuration; whether it differs from what the file held."""
    text = yaml.safe_dump(config, sort_keys=False)
    if path.is_file() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def start(
    supervisor: Supervisor, config: dict[str, Any], workdir: Path, port: int
) -> ManagedProcess:
    config_file = workdir / "alertmanager.yml"
    write_config(config, config_file)
    argv = [
        str(require("alertmanager")),
        f"--config.file={config_file}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        f"--web.listen-address={LOOPBACK}:{port}",
        "--cluster.listen-address=",  # a single instance: no gossip port
        "--log.level=warn",
    ]
    return supervisor.start("alertmanager", argv)


def reload(url: str) -> None:
    """Alertmanager re-reads its configuration file, as the operator's config-reloader asks."""
    response = requests.post(f"{url}/-/reload", timeout=10)
    response.raise_for_status()


def ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/-/ready", timeout=2).status_code == 200
    except requests.RequestException:
        return False
