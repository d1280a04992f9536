"""Renders the umbrella chart with the real helm binary.

kube-prometheus-stack is a dependency that must be downloaded from its chart repository, which
is not reachable everywhere (this project's own CI machine included). Helm refuses to render a
chart whose declared dependency is missing even when its condition is false, so for profiles that
disable the stack the umbrella is rendered from a temporary copy whose Chart.yaml leaves that
entry out. Everything else, templates and subchart included, is the chart as committed.
Set KUBE_PROMETHEUS_STACK_CHART to a kube-prometheus-stack chart (a folder or a .tgz) to render
the platform profile as well.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from local_stack.manifests import Manifest
from local_stack.toolchain import REPO_ROOT, require

UMBRELLA = REPO_ROOT / "charts" / "model-monitoring"
EXPORTER_CHART = REPO_ROOT / "charts" / "model-exporter"
STACK_DEPENDENCY = "kube-prometheus-stack"
STACK_CHART_ENV = "KUBE_PROMETHEUS_STACK_CHART"


class ChartError(Exception):
    """helm failed; the message carries helm's own words."""


def stack_chart_source() -> Path | None:
    """The kube-prometheus-stack chart to use, if one is vendored or named by the environment."""
    named = os.environ.get(STACK_CHART_ENV)
    if named:
        path = Path(named)
        if not path.exists():
            raise ChartError(f"{STACK_CHART_ENV}={named}: no such file or folder")
        return path
    vendored = sorted((UMBRELLA / "charts").glob(f"{STACK_DEPENDENCY}-*.tgz"))
    return vendored[-1] if vendored else None


def prepare_umbrella(workdir: Path, source: Path = UMBRELLA) -> Path:
    """A renderable copy of the umbrella in `workdir`, links resolved.

    With a kube-prometheus-stack chart available it is placed in the copy's charts/; without
    one, the copy's Chart.yaml leaves the dependency out (see the module docstring).
    """
    target = workdir / source.name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, symlinks=False)
    stack = stack_chart_source()
    if stack is not None:
        if stack.parent.resolve() != (source / "charts").resolve():  # vendored: copied already
            _place_stack_chart(stack, target / "charts")
        return target
    chart_file = target / "Chart.yaml"
    metadata = yaml.safe_load(chart_file.read_text())
    metadata["dependencies"] = [
        d for d in metadata.get("dependencies", []) if d["name"] != STACK_DEPENDENCY
    ]
    chart_file.write_text(yaml.safe_dump(metadata, sort_keys=False))
    return target


def _place_stack_chart(stack: Path, charts_dir: Path) -> None:
    if stack.is_dir():
        shutil.copytree(stack, charts_dir / STACK_DEPENDENCY, symlinks=False, dirs_exist_ok=True)
    else:
        with tarfile.open(stack) as archive:
            archive.extractall(charts_dir, filter="data")


def helm(*args: str, cwd: Path | None = None) -> str:
    binary = require("helm")
    result = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, cwd=cwd, check=False
    )
    if result.returncode != 0:
        findings = [
            line.strip()
            for line in result.stdout.splitlines()
            if line.lstrip().startswith(("[ERROR]", "[WARNING]"))
        ]
        message = "; ".join([*findings, result.stderr.strip()])
        raise ChartError(f"helm {args[0]} failed: {message}")
    return result.stdout


def render(
    chart: Path,
    *,
    release: str,
    namespace: str,
    values_files: Sequence[Path] = (),
    set_values: Mapping[str, str] | None = None,
    kube_version: str | None = None,
) -> list[Manifest]:
    """`helm template`, parsed: every rendered object, test hooks included."""
    args = ["template", release, str(chart), "--namespace", namespace]
    for values in values_files:
        args += ["--values", str(values)]
    for key, value in (set_values or {}).items():
        args += ["--set", f"{key}={value}"]
    if kube_version:
        args += ["--kube-version", kube_version]
    documents: list[Any] = list(yaml.safe_load_all(helm(*args)))
    return [d for d in documents if isinstance(d, dict) and d.get("kind")]


def merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Values merged as helm merges them: maps key by key, anything else replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def merged_values(
    values_files: Sequence[Path] = (), set_values: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The umbrella's values as helm merges them: its defaults, each file, then each --set (a
    dotted key, its value typed as YAML would type it)."""
    values: dict[str, Any] = yaml.safe_load((UMBRELLA / "values.yaml").read_text()) or {}
    for path in values_files:
        values = merge(values, yaml.safe_load(Path(path).read_text()) or {})
    for dotted, text in (set_values or {}).items():
        *parents, leaf = dotted.split(".")
        tree: dict[str, Any] = {leaf: yaml.safe_load(text) if text else text}
        for parent in reversed(parents):
            tree = {parent: tree}
        values = merge(values, tree)
    return values
