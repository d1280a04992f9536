"""Runs rendered Deployments as local processes, one per replica ("pod").

A pod keeps the container's command, args and env. What differs from a cluster, each because the
processes share one network and one filesystem:

- ports: every containerPort gets a free port on 127.0.0.1, passed through the `--port` flag or
  an env variable ending in PORT whose value is that containerPort;
- the listen address: `pod_env` (the exporter's MODELMON_HOST) binds the process to loopback;
- image paths: a path under a key of `path_map` (a folder inside the image) is rewritten to the
  local folder that holds the same files;
- ConfigMap volumes: their keys are written as files under `mounts_dir`, and the mount path is
  rewritten to that folder, as the kubelet would project them;
- PersistentVolumeClaims: one folder per claim, shared by the pods that mount it and kept
  across their restarts (one node: ReadWriteOnce binds for every pod);
- cluster DNS: `//<service>:<port>` (short or namespace-qualified) in URLs of args and env becomes
  the loopback address of that Service's proxy (local_stack.proxy), which spreads connections over
  the Service's ready pods.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from local_stack.manifests import (
    Container,
    LabelSelector,
    ManifestError,
    Service,
    Workload,
)
from local_stack.processes import ManagedProcess, Supervisor

LOOPBACK = "127.0.0.1"
_VARIABLE_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalPod:
    name: str
    namespace: str
    workload: str
    labels: Mapping[str, str]
    container: Container
    host_ports: dict[int, int]
    process: ManagedProcess | None = field(default=None, repr=False)
    grace_seconds: float = 30.0

    def port(self, reference: str | int) -> int:
        """Host port for a container port given by name or number."""
        number = self.container.ports.get(str(reference)) if isinstance(reference, str) else None
        container_port = number if number is not None else int(reference)
        if container_port not in self.host_ports:
            raise ManifestError(f"pod {self.name} has no container port {reference}")
        return self.host_ports[container_port]

    def url(self, reference: str | int, path: str = "") -> str:
        return f"http://{LOOPBACK}:{self.port(reference)}{path}"


def expand_references(text: str, variables: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in command and args; unknown references stay as written."""
    return _VARIABLE_REFERENCE.sub(lambda m: variables.get(m[1], m[0]), text)


def _remap_args(args: Sequence[str], port_map: Mapping[int, int]) -> tuple[list[str], set[int]]:
    remapped: list[str] = []
    used: set[int] = set()
    pending_flag = False
    for arg in args:
        if pending_flag and arg.isdigit() and int(arg) in port_map:
            remapped.append(str(port_map[int(arg)]))
            used.add(int(arg))
            pending_flag = False
            continue
        pending_flag = arg == "--port"
        flag, sep, value = arg.partition("=")
        if flag == "--port" and sep and value.isdigit() and int(value) in port_map:
            remapped.append(f"--port={port_map[int(value)]}")
            used.add(int(value))
        else:
            remapped.append(arg)
    return remapped, used


def _map_path(value: str, path_map: Mapping[str, Path]) -> str:
    for image_prefix, local in path_map.items():
        if value == image_prefix or value.startswith(image_prefix.rstrip("/") + "/"):
            return str(local) + value[len(image_prefix.rstrip("/")) :]
        flag, sep, rest = value.partition("=")
        if sep and (rest == image_prefix or rest.startswith(image_prefix.rstrip("/") + "/")):
            return f"{flag}={_map_path(rest, path_map)}"
    return value


def plan_pods(workload: Workload, first: int = 0, count: int | None = None) -> list[LocalPod]:
    """Pods <workload>-<first>, <workload>-<first + 1>, ... (one per replica unless `count`),
    each container port given a free loopback port."""
    pods = []
    for index in range(first, first + (workload.replicas if count is None else count)):
        container = workload.container
        pods.append(
            LocalPod(
                name=f"{workload.name}-{index}",
                namespace=workload.namespace,
                workload=workload.name,
                labels=workload.pod_labels,
                container=container,
                host_ports={port: free_port() for port in container.ports.values()},
                grace_seconds=workload.termination_grace,
            )
        )
    return pods


def service_addresses(
    services: Sequence[Service], proxy_ports: Mapping[tuple[str, str, int], int]
) -> dict[str, str]:
    """Every DNS spelling of `<service>:<port>` → the loopback address of its proxy, keyed in
    `proxy_ports` by (namespace, name, port)."""
    addresses: dict[str, str] = {}
    for service in services:
        for port in service.ports:
            target = f"{LOOPBACK}:{proxy_ports[(service.namespace, service.name, port.port)]}"
            base = f"{service.name}.{service.namespace}"
            for host in (service.name, base, f"{base}.svc", f"{base}.svc.cluster.local"):
                addresses[f"{host}:{port.port}"] = target
    return addresses


def endpoints_of(service: Service, port: int, pods: Sequence[LocalPod]) -> list[int]:
    """Host ports behind one port of a Service, one per pod its selector picks."""
    [service_port] = [p for p in service.ports if p.port == port]
    selector = LabelSelector(service.selector)
    return [
        pod.port(service_port.target_port)
        for pod in pods
        if pod.namespace == service.namespace and selector.matches(pod.labels)
    ]


def map_services(value: str, addresses: Mapping[str, str]) -> str:
    """URLs that name a Service of the release (any DNS spelling) → its local address."""
    for name in sorted(addresses, key=len, reverse=True):
        value = re.sub(rf"(?<=//){re.escape(name)}(?![\w.-])", addresses[name], value)
    return value


@dataclass(frozen=True)
class PodRuntime:
    """How pods become processes on this machine."""

    bin_dirs: Sequence[Path]
    path_map: Mapping[str, Path]
    pod_env: Mapping[str, str]
    mounts_dir: Path | None = None
    config_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    config_map_volumes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    services: Mapping[str, str] = field(default_factory=dict)
    # Secrets the user gives the stack (namespace -> name -> key -> value): the chart never
    # holds them, and a pod sees those of its own namespace only.
    secrets: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    secret_volumes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    empty_dir_volumes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    claim_volumes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # namespace/name of each bound PersistentVolumeClaim -> the folder that is its volume
    claims: Mapping[str, Path] = field(default_factory=dict)

    def has_secret(self, pod: LocalPod, name: str) -> bool:
        return name in self.secrets.get(pod.namespace, {})

    def secret(self, pod: LocalPod, name: str) -> Mapping[str, str]:
        if not self.has_secret(pod, name):
            raise ManifestError(
                f"pod {pod.name} needs Secret {name} in namespace {pod.namespace}, which the "
                "local stack was not given (StackOptions.secrets): a cluster would not start it "
                "either"
            )
        return self.secrets[pod.namespace][name]

    def _volume_files(self, pod: LocalPod, volume: str) -> tuple[str, Mapping[str, str]] | None:
        """(kind, files) of one of the pod's volumes, or None when it is not one we project."""
        config_map = self.config_map_volumes.get(pod.workload, {}).get(volume)
        if config_map is not None:
            if config_map not in self.config_maps:
                raise ManifestError(f"pod {pod.name}: ConfigMap {config_map} is not in the release")
            return "ConfigMap", self.config_maps[config_map]
        secret = self.secret_volumes.get(pod.workload, {}).get(volume)
        if secret is not None:
            return "Secret", self.secret(pod, secret)
        claim = self.claim_volumes.get(pod.workload, {}).get(volume)
        if claim is not None:
            if f"{pod.namespace}/{claim}" not in self.claims:
                raise ManifestError(
                    f"pod {pod.name}: PersistentVolumeClaim {claim} is not in namespace "
                    f"{pod.namespace}; a cluster would leave the pod Pending"
                )
            return "PersistentVolumeClaim", {}
        if volume in self.empty_dir_volumes.get(pod.workload, frozenset()):
            # a folder of the pod's own, kept across restarts of its process, so nothing lands
            # in the machine's shared /tmp
            return "emptyDir", {}
        return None

    def _folder(self, pod: LocalPod, volume: str, kind: str) -> Path:
        claim = self.claim_volumes.get(pod.workload, {}).get(volume)
        if claim is not None:  # the claim's folder: every pod that mounts it, every restart
            return self.claims[f"{pod.namespace}/{claim}"]
        if self.mounts_dir is None:
            raise ManifestError(f"pod {pod.name} mounts a {kind} but no mounts_dir is set")
        return self.mounts_dir / pod.name / volume

    def mounted_paths(self, pod: LocalPod) -> dict[str, Path]:
        """Mount path → the local folder of each volume the pod mounts, without writing."""
        return {
            mount_path: self._folder(pod, volume, "volume")
            for mount_path, volume in pod.container.mounts.items()
            if self._volume_files(pod, volume) is not None
        }

    def exec_command(
        self, pod: LocalPod, command: tuple[str, ...]
    ) -> tuple[list[str], dict[str, str]]:
        """A command run in the pod's container (an exec probe or hook), as a local argv and
        the container's environment."""
        env = self._environment(pod)
        path_map = {**self.path_map, **self.mounted_paths(pod)}
        argv = [_map_path(expand_references(part, env), path_map) for part in command]
        search_path = env["PATH"]
        found = shutil.which(argv[0], path=search_path) if "/" not in argv[0] else argv[0]
        if found is None:
            raise ManifestError(f"pod {pod.name}: command {argv[0]!r} not found on {search_path}")
        return [found, *argv[1:]], env

    def mount_volumes(self, pod: LocalPod) -> dict[str, Path]:
        """Writes the pod's ConfigMap and Secret volumes (Secrets readable by this user only)
        and makes its emptyDirs, under mounts_dir; mount path → local folder."""
        mounted: dict[str, Path] = {}
        for mount_path, volume in pod.container.mounts.items():
            found = self._volume_files(pod, volume)
            if found is None:
                continue
            kind, files = found
            private = kind == "Secret"
            folder = self._folder(pod, volume, kind)
            folder.mkdir(parents=True, exist_ok=True, mode=0o700 if private else 0o777)
            for key, text in files.items():
                write_atomically(folder / key, text, mode=0o600 if private else 0o644)
            mounted[mount_path] = folder
        return mounted

    def _declared(self, pod: LocalPod) -> tuple[dict[str, str], set[int]]:
        """The container's env with ports moved to the host ports and Secret references filled
        in; and the container ports an env variable passes."""
        declared = dict(pod.container.env)
        env_used: set[int] = set()
        for name, value in declared.items():
            if name.endswith("PORT") and value.isdigit() and int(value) in pod.host_ports:
                declared[name] = str(pod.host_ports[int(value)])
                env_used.add(int(value))
        for variable, secret, key, optional in pod.container.secret_env:
            if optional and not self.has_secret(pod, secret):
                continue
            data = self.secret(pod, secret)
            if key not in data:
                raise ManifestError(f"pod {pod.name}: Secret {secret} has no key {key}")
            declared[variable] = data[key]
        return declared, env_used

    def _environment(self, pod: LocalPod) -> dict[str, str]:
        declared, _ports = self._declared(pod)
        path_map = {**self.path_map, **self.mounted_paths(pod)}
        return {
            "PATH": os.pathsep.join([*map(str, self.bin_dirs), os.environ.get("PATH", "")]),
            "HOME": os.environ.get("HOME", tempfile.gettempdir()),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            **self.pod_env,
            **{
                name: map_services(_map_path(value, path_map), self.services)
                for name, value in declared.items()
            },
        }

    def argv_and_env(self, pod: LocalPod) -> tuple[list[str], dict[str, str]]:
        """The container's command line and environment, its volumes written first."""
        path_map = {**self.path_map, **self.mount_volumes(pod)}
        declared, env_used = self._declared(pod)
        command = [expand_references(c, declared) for c in pod.container.command]
        args = [expand_references(a, declared) for a in pod.container.args]
        args, args_used = _remap_args(args, pod.host_ports)
        unmapped = set(pod.host_ports) - args_used - env_used
        if unmapped:
            raise ManifestError(
                f"pod {pod.name}: container port {sorted(unmapped)[0]} is not passed as --port "
                "or a *PORT env variable, so it cannot be moved to a free local port"
            )
        argv = [map_services(_map_path(part, path_map), self.services) for part in command + args]
        argv[0] = self._resolve(argv[0])
        return argv, self._environment(pod)

    def _resolve(self, executable: str) -> str:
        if "/" in executable:
            return executable
        for directory in self.bin_dirs:
            candidate = directory / executable
            if candidate.is_file():
                return str(candidate)
        raise ManifestError(
            f"command {executable!r} not found in {', '.join(map(str, self.bin_dirs))}: "
            "is the exporter package installed in the virtual environment (`make setup`)?"
        )

    def start(self, pod: LocalPod, supervisor: Supervisor) -> None:
        argv, env = self.argv_and_env(pod)
        pod.process = supervisor.start(pod.name, argv, env)


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """As the kubelet updates a projected volume: readers see the old file or the new one."""
    partial = path.with_name(f".{path.name}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.replace(partial, path)
