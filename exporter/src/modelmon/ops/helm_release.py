"""A release in a real cluster, as `modelmon-ops promote` drives it: the canary's weight set by
`helm upgrade`, the promotion's state kept in a ConfigMap of the release's namespace (so a new
CI runner finds it), both through the helm and kubectl on PATH and their KUBECONFIG."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from modelmon.ops.errors import OpsError
from modelmon.ops.promotion import PromotionState

STATE_KEY = "state"
WEIGHT_VALUE = "model-exporter.canary.weight"
CANARY_VALUE = "model-exporter.canary.enabled"


def state_config_map(release: str) -> str:
    return f"{release}-promotion"


@dataclass(frozen=True)
class HelmRelease:
    release: str
    namespace: str
    chart: Path
    values_files: Sequence[Path] = ()
    set_strings: Sequence[str] = ()  # KEY=VALUE, e.g. the image under test
    timeout: str = "10m"
    tools: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for tool in ("helm", "kubectl"):
            found = shutil.which(tool)
            if found is None:
                raise OpsError(f"{tool} is not on PATH (promote drives the cluster with it)")
            self.tools[tool] = found
        for values in self.values_files:
            if not values.is_file():
                raise OpsError(f"no values file {values}")
        if not (self.chart / "Chart.yaml").is_file():
            raise OpsError(f"no chart at {self.chart}")

    def _run(self, tool: str, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(  # nosec B603 - the tools found on PATH, arguments of our own
            [self.tools[tool], *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise OpsError(f"{tool} {args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def set_weight(self, weight: int) -> None:
        """One helm upgrade; a failed one rolls back to the previous release (and raises)."""
        args = ["upgrade", "--install", self.release, str(self.chart)]
        args += ["--namespace", self.namespace, "--create-namespace"]
        for values in self.values_files:
            args += ["--values", str(values)]
        for assignment in self.set_strings:
            args += ["--set-string", assignment]
        args += ["--set", f"{CANARY_VALUE}=true", "--set", f"{WEIGHT_VALUE}={weight}"]
        args += ["--wait", "--rollback-on-failure", "--timeout", self.timeout]
        self._run("helm", *args)

    def load_state(self) -> PromotionState | None:
        name = state_config_map(self.release)
        try:
            text = self._run(
                "kubectl",
                "get",
                "configmap",
                name,
                "--namespace",
                self.namespace,
                "--ignore-not-found",
                "--output",
                "json",
            )
        except OpsError as exc:
            raise OpsError(f"cannot read the promotion's state ({name}): {exc}") from exc
        if not text.strip():
            return None
        data = json.loads(text).get("data") or {}
        return PromotionState.from_json(data[STATE_KEY]) if STATE_KEY in data else None

    def save_state(self, state: PromotionState) -> None:
        manifest = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": state_config_map(self.release),
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": "modelmon-ops"},
            },
            "data": {STATE_KEY: state.to_json()},
        }
        self._run("kubectl", "apply", "--filename", "-", stdin=json.dumps(manifest))
