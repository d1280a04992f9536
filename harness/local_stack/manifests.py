"""Typed views of the rendered Kubernetes objects that the local stack runs or translates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Manifest = dict[str, Any]


class ManifestError(Exception):
    """A rendered object that the local stack cannot run as it is."""


@dataclass(frozen=True)
class Action:
    """What a probe or a preStop hook does: an HTTP GET, a TCP connect, or a command."""

    kind: str  # httpGet, tcpSocket or exec
    port: str | int = 0
    path: str = "/"
    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class Probe:
    """A container probe, with the API server's defaults for what the manifest leaves out."""

    action: Action
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True)
class Container:
    name: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    ports: Mapping[str, int]
    readiness: Probe | None
    liveness: Probe | None = None
    startup: Probe | None = None
    pre_stop: Action | None = None
    mounts: Mapping[str, str] = field(default_factory=dict)  # mountPath -> volume name
    # env variables from secretKeyRef: (variable, Secret, key, optional)
    secret_env: tuple[tuple[str, str, str, bool], ...] = ()


@dataclass(frozen=True)
class RolloutStrategy:
    """A Deployment's strategy, maxSurge and maxUnavailable resolved against its replicas."""

    kind: str = "RollingUpdate"  # or Recreate
    max_surge: int = 1
    max_unavailable: int = 0


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
    claim_volumes: Mapping[str, str] = field(default_factory=dict)  # volume -> claim
    termination_grace: float = 30.0
    strategy: RolloutStrategy = field(default_factory=RolloutStrategy)

    @property
    def container(self) -> Container:
        return self.containers[0]


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
    honor_labels: bool = False
    params: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    relabelings: tuple[Mapping[str, Any], ...] = ()
    metric_relabelings: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Monitor:
    """A ServiceMonitor (targets: the pods behind the Services it selects) or a PodMonitor
    (targets: the pods it selects)."""

    kind: str
    name: str
    namespace: str
    labels: Mapping[str, str]
    selector: LabelSelector
    namespaces: tuple[str, ...] | None  # None: any namespace
    job_label: str | None
    endpoints: tuple[Endpoint, ...]
    target_labels: tuple[str, ...] = ()  # Service labels copied onto every target
    pod_target_labels: tuple[str, ...] = ()  # pod labels copied onto every target
    limits: Mapping[str, int] = field(
        default_factory=dict
    )  # sample_limit, ... as Prometheus names them


def of_kind(objects: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [o for o in objects if o.get("kind") == kind]


# Kinds whose work the local stack does not do: run, they would be silently left undone (a
# Probe's targets never probed, a Rollout's or a Canary's pods never started), so a manifest
# holding one is refused.
NOT_MODELLED_KINDS = (
    "Probe",
    "ScrapeConfig",
    "StatefulSet",
    "DaemonSet",
    "Rollout",
    "AnalysisTemplate",
    "Canary",
    "MetricTemplate",
)


def refuse_not_modelled_kinds(objects: Iterable[Manifest]) -> None:
    for obj in objects:
        if obj.get("kind") in NOT_MODELLED_KINDS:
            raise ManifestError(
                f"{obj['kind']} {obj['metadata']['name']} is not modelled by the local stack, "
                "which refuses it rather than leave its work undone"
            )


def _namespace(obj: Manifest) -> str:
    return str(obj["metadata"].get("namespace", "default"))


def _action(spec: Manifest, owner: str) -> Action:
    if "httpGet" in spec:
        get = spec["httpGet"]
        if get.get("scheme", "HTTP") != "HTTP" or get.get("httpHeaders") or get.get("host"):
            raise ManifestError(f"{owner}: httpGet with a scheme, host or headers is not modelled")
        return Action("httpGet", port=get["port"], path=str(get.get("path", "/")))
    if "tcpSocket" in spec:
        return Action("tcpSocket", port=spec["tcpSocket"]["port"])
    if "exec" in spec:
        return Action("exec", command=tuple(str(c) for c in spec["exec"]["command"]))
    raise ManifestError(
        f"{owner}: only httpGet, tcpSocket and exec are modelled, not {sorted(spec)}"
    )


def _probe(spec: Manifest | None, owner: str) -> Probe | None:
    if not spec:
        return None
    return Probe(
        action=_action(spec, owner),
        initial_delay=float(spec.get("initialDelaySeconds", 0)),
        period=float(spec.get("periodSeconds", 10)),
        timeout=float(spec.get("timeoutSeconds", 1)),
        success_threshold=int(spec.get("successThreshold", 1)),
        failure_threshold=int(spec.get("failureThreshold", 3)),
    )


def _pre_stop(spec: Manifest, owner: str) -> Action | None:
    hook = (spec.get("lifecycle") or {}).get("preStop")
    if not hook:
        return None
    if "sleep" in hook:  # the kubelet's own sleep action (Kubernetes 1.30+)
        return Action("exec", command=("sleep", str(hook["sleep"]["seconds"])))
    return _action(hook, f"{owner} preStop")


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
    where = f"{owner} container {spec['name']}"
    return Container(
        name=spec["name"],
        command=tuple(str(c) for c in spec["command"]),
        args=tuple(str(a) for a in spec.get("args") or ()),
        env=tuple(env),
        ports=ports,
        readiness=_probe(spec.get("readinessProbe"), f"{where} readinessProbe"),
        liveness=_probe(spec.get("livenessProbe"), f"{where} livenessProbe"),
        startup=_probe(spec.get("startupProbe"), f"{where} startupProbe"),
        pre_stop=_pre_stop(spec, where),
        mounts={m["mountPath"]: m["name"] for m in spec.get("volumeMounts") or ()},
        secret_env=tuple(secret_env),
    )


@dataclass(frozen=True)
class Claim:
    """A PersistentVolumeClaim: the local stack's one node can bind every access mode but
    ReadWriteOncePod, and a claim helm keeps outlives its release."""

    name: str
    namespace: str
    kept_on_uninstall: bool


def claims(objects: Iterable[Manifest]) -> list[Claim]:
    found = []
    for claim in of_kind(objects, "PersistentVolumeClaim"):
        name = claim["metadata"]["name"]
        modes = claim["spec"].get("accessModes") or ()
        if "ReadWriteOncePod" in modes:
            raise ManifestError(
                f"PersistentVolumeClaim {name}: ReadWriteOncePod is not modelled by the local stack"
            )
        annotations = claim["metadata"].get("annotations") or {}
        kept = annotations.get("helm.sh/resource-policy") == "keep"
        found.append(Claim(name, _namespace(claim), kept))
    return found


def config_maps(objects: Iterable[Manifest]) -> dict[str, dict[str, str]]:
    return {c["metadata"]["name"]: dict(c.get("data") or {}) for c in of_kind(objects, "ConfigMap")}


# What a pod spec may hold for the local stack to run it as a cluster would; anything else is
# refused by name (see README, "What the local stack does not model").
NOT_MODELLED_POD_FIELDS = (
    "initContainers",
    "ephemeralContainers",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "shareProcessNamespace",
    "readinessGates",
)
PROJECTED_VOLUMES = ("configMap", "secret", "emptyDir", "persistentVolumeClaim")


def _resolve_count(value: int | str, replicas: int, round_up: bool) -> int:
    """maxSurge / maxUnavailable: a number, or a percentage of the replicas (surge rounds up,
    unavailability down, as the Deployment controller does)."""
    if isinstance(value, int):
        return value
    share = int(str(value).rstrip("%")) * replicas
    return -(-share // 100) if round_up else share // 100


def _strategy(spec: Manifest, replicas: int, owner: str) -> RolloutStrategy:
    strategy = spec.get("strategy") or {}
    kind = strategy.get("type", "RollingUpdate")
    if kind == "Recreate":
        return RolloutStrategy("Recreate", 0, replicas)
    rolling = strategy.get("rollingUpdate") or {}
    surge = _resolve_count(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = _resolve_count(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        raise ManifestError(f"{owner}: maxSurge and maxUnavailable cannot both be 0")
    if spec.get("minReadySeconds"):
        raise ManifestError(f"{owner}: minReadySeconds is not modelled by the local stack")
    return RolloutStrategy("RollingUpdate", surge, unavailable)


def _check_pod_spec(pod_spec: Manifest, owner: str) -> None:
    present = [field for field in NOT_MODELLED_POD_FIELDS if pod_spec.get(field)]
    if present:
        raise ManifestError(f"{owner}: {present[0]} is not modelled by the local stack")
    if len(pod_spec["containers"]) != 1:
        raise ManifestError(f"{owner}: the local stack runs pods of one container only")
    for volume in pod_spec.get("volumes") or ():
        if not any(kind in volume for kind in PROJECTED_VOLUMES):
            kinds = sorted(set(volume) - {"name"})
            raise ManifestError(
                f"{owner}: volume {volume['name']} ({', '.join(kinds)}) is not modelled; the "
                f"local stack projects {', '.join(PROJECTED_VOLUMES)} volumes only"
            )
    restart = pod_spec.get("restartPolicy", "Always")
    if restart != "Always":
        raise ManifestError(f"{owner}: a Deployment's pods restart Always, not {restart}")


def workloads(objects: Iterable[Manifest]) -> list[Workload]:
    result = []
    for deployment in of_kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        owner = f"Deployment {name}"
        pod = deployment["spec"]["template"]
        pod_spec = pod["spec"]
        _check_pod_spec(pod_spec, owner)
        volumes = pod_spec.get("volumes") or ()
        replicas = int(deployment["spec"].get("replicas", 1))
        result.append(
            Workload(
                name=name,
                namespace=_namespace(deployment),
                replicas=replicas,
                pod_labels=dict(pod["metadata"].get("labels") or {}),
                containers=tuple(_container(c, owner) for c in pod_spec["containers"]),
                config_map_volumes={
                    v["name"]: v["configMap"]["name"] for v in volumes if "configMap" in v
                },
                secret_volumes={
                    v["name"]: v["secret"]["secretName"] for v in volumes if "secret" in v
                },
                empty_dir_volumes=frozenset(v["name"] for v in volumes if "emptyDir" in v),
                claim_volumes={
                    v["name"]: v["persistentVolumeClaim"]["claimName"]
                    for v in volumes
                    if "persistentVolumeClaim" in v
                },
                termination_grace=float(pod_spec.get("terminationGracePeriodSeconds", 30)),
                strategy=_strategy(deployment["spec"], replicas, owner),
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


# ServiceMonitor fields the local stack translates as the Prometheus Operator does; any other
# field is refused by name rather than dropped (a scrape without its TLS or credentials is not
# the scrape the manifest asked for).
ENDPOINT_FIELDS = {
    "port",
    "path",
    "interval",
    "scrapeTimeout",
    "scheme",
    "honorLabels",
    "params",
    "relabelings",
    "metricRelabelings",
}
MONITOR_FIELDS = {
    "selector",
    "namespaceSelector",
    "endpoints",
    "jobLabel",
    "targetLabels",
    "podTargetLabels",
    "sampleLimit",
    "targetLimit",
    "labelLimit",
    "labelNameLengthLimit",
    "labelValueLengthLimit",
}
LIMITS = {
    "sampleLimit": "sample_limit",
    "targetLimit": "target_limit",
    "labelLimit": "label_limit",
    "labelNameLengthLimit": "label_name_length_limit",
    "labelValueLengthLimit": "label_value_length_limit",
}


def _refuse_unknown(spec: Manifest, known: set[str], owner: str) -> None:
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ManifestError(
            f"{owner}: {', '.join(unknown)} is not modelled by the local stack, which refuses "
            "it rather than scrape without it"
        )


def _endpoint(spec: Manifest, owner: str) -> Endpoint:
    _refuse_unknown(spec, ENDPOINT_FIELDS, owner)
    if "port" not in spec:
        raise ManifestError(f"{owner}: only named-port endpoints are supported by the local stack")
    if spec.get("scheme", "http") != "http":
        raise ManifestError(f"{owner}: scheme {spec['scheme']} needs TLS, not modelled locally")
    return Endpoint(
        port=str(spec["port"]),
        path=str(spec.get("path", "/metrics")),
        interval=str(spec.get("interval", "30s")),
        scrape_timeout=spec.get("scrapeTimeout"),
        scheme="http",
        honor_labels=bool(spec.get("honorLabels", False)),
        params={k: tuple(map(str, v)) for k, v in (spec.get("params") or {}).items()},
        relabelings=tuple(spec.get("relabelings") or ()),
        metric_relabelings=tuple(spec.get("metricRelabelings") or ()),
    )


# The monitors' own fields for their endpoints, and the PodMonitor's spelling of them.
ENDPOINTS_FIELD = {"ServiceMonitor": "endpoints", "PodMonitor": "podMetricsEndpoints"}
POD_MONITOR_FIELDS = MONITOR_FIELDS - {"endpoints", "targetLabels"} | {"podMetricsEndpoints"}


def monitors(objects: Iterable[Manifest], kind: str) -> list[Monitor]:
    """The ServiceMonitors or PodMonitors among the objects, as the operator reads them."""
    result = []
    for monitor in of_kind(objects, kind):
        spec = monitor["spec"]
        owner = f"{kind} {monitor['metadata']['name']}"
        _refuse_unknown(
            spec, MONITOR_FIELDS if kind == "ServiceMonitor" else POD_MONITOR_FIELDS, owner
        )
        namespace_selector = spec.get("namespaceSelector") or {}
        if namespace_selector.get("any"):
            namespaces: tuple[str, ...] | None = None
        else:
            namespaces = tuple(namespace_selector.get("matchNames") or (_namespace(monitor),))
        result.append(
            Monitor(
                kind=kind,
                name=monitor["metadata"]["name"],
                namespace=_namespace(monitor),
                labels=dict(monitor["metadata"].get("labels") or {}),
                selector=_selector(spec.get("selector")),
                namespaces=namespaces,
                job_label=spec.get("jobLabel"),
                endpoints=tuple(
                    _endpoint(e, f"{owner} endpoint {i}")
                    for i, e in enumerate(spec.get(ENDPOINTS_FIELD[kind]) or ())
                ),
                target_labels=tuple(spec.get("targetLabels") or ()),
                pod_target_labels=tuple(spec.get("podTargetLabels") or ()),
                limits={LIMITS[k]: int(v) for k, v in spec.items() if k in LIMITS},
            )
        )
    return result


def service_monitors(objects: Iterable[Manifest]) -> list[Monitor]:
    return monitors(objects, "ServiceMonitor")
