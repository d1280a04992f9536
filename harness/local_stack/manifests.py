"""Typed views of the rendered Kubernetes objects that the local stack runs or translates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Manifest = dict[str, Any]


class ManifestError(Exception):
    """A rendered object that the local stack cannot run as it is."""


@dataclass(frozen=True)
class Probe:
    path: str
    port: str | int


@dataclass(frozen=True)
class Container:
    name: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    ports: Mapping[str, int]
    readiness: Probe | None
    mounts: Mapping[str, str] = field(default_factory=dict)  # mountPath -> volume name
    # env variables from secretKeyRef: (variable, Secret, key, optional)
    secret_env: tuple[tuple[str, str, str, bool], ...] = ()


@dataclass(frozen=True)
class Workload:
    name: str
    namespace: str
    replicas: int
    pod_labels: Mapping[str, str]
    containers: tuple[Container, ...]
    config_map_volumes: Mapping[str, str] = field(default_factory=dict)  # volume -> ConfigMap
    secret_volumes: Mapping[str, str] = field(default_factory=dict)  # volume -> Secret
    empty_dir_volumes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ServicePort:
    name: str
    port: int
    target_port: str | int


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str
    labels: Mapping[str, str]
    selector: Mapping[str, str]
    ports: tuple[ServicePort, ...]


@dataclass(frozen=True)
class LabelSelector:
    match_labels: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[Mapping[str, Any], ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if any(labels.get(key) != value for key, value in self.match_labels.items()):
            return False
        for expression in self.match_expressions:
            key, operator = expression["key"], expression["operator"]
            values = set(expression.get("values") or ())
            present = key in labels
            if operator == "In" and not (present and labels[key] in values):
                return False
            if operator == "NotIn" and present and labels[key] in values:
                return False
            if operator == "Exists" and not present:
                return False
            if operator == "DoesNotExist" and present:
                return False
        return True


@dataclass(frozen=True)
class Endpoint:
    port: str
    path: str
    interval: str
    scrape_timeout: str | None
    scheme: str


@dataclass(frozen=True)
class ServiceMonitor:
    name: str
    namespace: str
    labels: Mapping[str, str]
    selector: LabelSelector
    namespaces: tuple[str, ...] | None  # None: any namespace
    job_label: str | None
    endpoints: tuple[Endpoint, ...]


def of_kind(objects: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [o for o in objects if o.get("kind") == kind]


def _namespace(obj: Manifest) -> str:
    return str(obj["metadata"].get("namespace", "default"))


def _probe(spec: Manifest | None) -> Probe | None:
    if not spec or "httpGet" not in spec:
        return None
    get = spec["httpGet"]
    return Probe(path=str(get.get("path", "/")), port=get["port"])


def _container(spec: Manifest, owner: str) -> Container:
    env: list[tuple[str, str]] = []
    secret_env: list[tuple[str, str, str, bool]] = []
    for variable in spec.get("env") or ():
        reference = (variable.get("valueFrom") or {}).get("secretKeyRef")
        if reference:
            secret_env.append(
                (
                    variable["name"],
                    reference["name"],
                    reference["key"],
                    bool(reference.get("optional", False)),
                )
            )
            continue
        if "value" not in variable:
            raise ManifestError(
                f"{owner}: env {variable['name']} uses a valueFrom other than secretKeyRef, "
                "which the local stack cannot resolve; give it a literal value in the local "
                "values file"
            )
        env.append((variable["name"], str(variable["value"])))
    if not spec.get("command"):
        raise ManifestError(
            f"{owner}: container {spec['name']} sets no command; the local stack runs the "
            "command, so the chart must name it instead of relying on the image's entrypoint"
        )
    ports = {
        str(p.get("name", p["containerPort"])): int(p["containerPort"])
        for p in spec.get("ports") or ()
    }
    return Container(
        name=spec["name"],
        command=tuple(str(c) for c in spec["command"]),
        args=tuple(str(a) for a in spec.get("args") or ()),
        env=tuple(env),
        ports=ports,
        readiness=_probe(spec.get("readinessProbe")),
        mounts={m["mountPath"]: m["name"] for m in spec.get("volumeMounts") or ()},
        secret_env=tuple(secret_env),
    )


def config_maps(objects: Iterable[Manifest]) -> dict[str, dict[str, str]]:
    return {c["metadata"]["name"]: dict(c.get("data") or {}) for c in of_kind(objects, "ConfigMap")}


def workloads(objects: Iterable[Manifest]) -> list[Workload]:
    result = []
    for deployment in of_kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]
        result.append(
            Workload(
                name=name,
                namespace=_namespace(deployment),
                replicas=int(deployment["spec"].get("replicas", 1)),
                pod_labels=dict(pod["metadata"].get("labels") or {}),
                containers=tuple(
                    _container(c, f"Deployment {name}") for c in pod["spec"]["containers"]
                ),
                config_map_volumes={
                    v["name"]: v["configMap"]["name"]
                    for v in pod["spec"].get("volumes") or ()
                    if "configMap" in v
                },
                secret_volumes={
                    v["name"]: v["secret"]["secretName"]
                    for v in pod["spec"].get("volumes") or ()
                    if "secret" in v
                },
                empty_dir_volumes=frozenset(
                    v["name"] for v in pod["spec"].get("volumes") or () if "emptyDir" in v
                ),
            )
        )
    return result


def services(objects: Iterable[Manifest]) -> list[Service]:
    return [
        Service(
            name=s["metadata"]["name"],
            namespace=_namespace(s),
            labels=dict(s["metadata"].get("labels") or {}),
            selector=dict(s["spec"].get("selector") or {}),
            ports=tuple(
                ServicePort(
                    name=str(p.get("name", "")),
                    port=int(p["port"]),
                    target_port=p.get("targetPort", p["port"]),
                )
                for p in s["spec"].get("ports") or ()
            ),
        )
        for s in of_kind(objects, "Service")
    ]


def _selector(spec: Manifest | None) -> LabelSelector:
    spec = spec or {}
    return LabelSelector(
        match_labels=dict(spec.get("matchLabels") or {}),
        match_expressions=tuple(spec.get("matchExpressions") or ()),
    )


def service_monitors(objects: Iterable[Manifest]) -> list[ServiceMonitor]:
    result = []
    for monitor in of_kind(objects, "ServiceMonitor"):
        spec = monitor["spec"]
        namespace_selector = spec.get("namespaceSelector") or {}
        if namespace_selector.get("any"):
            namespaces: tuple[str, ...] | None = None
        else:
            namespaces = tuple(namespace_selector.get("matchNames") or (_namespace(monitor),))
        endpoints = []
        for endpoint in spec.get("endpoints") or ():
            if "port" not in endpoint:
                raise ManifestError(
                    f"ServiceMonitor {monitor['metadata']['name']}: only named-port endpoints "
                    "are supported by the local stack"
                )
            endpoints.append(
                Endpoint(
                    port=str(endpoint["port"]),
                    path=str(endpoint.get("path", "/metrics")),
                    interval=str(endpoint.get("interval", "30s")),
                    scrape_timeout=endpoint.get("scrapeTimeout"),
                    scheme=str(endpoint.get("scheme", "http")),
                )
            )
        result.append(
            ServiceMonitor(
                name=monitor["metadata"]["name"],
                namespace=_namespace(monitor),
                labels=dict(monitor["metadata"].get("labels") or {}),
                selector=_selector(spec.get("selector")),
                namespaces=namespaces,
                job_label=spec.get("jobLabel"),
                endpoints=tuple(endpoints),
            )
        )
    return result
