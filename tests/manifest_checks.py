"""Rendering and schema checks shared by the chart tests."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from local_stack import chart
from local_stack.toolchain import REPO_ROOT

KUBERNETES_VERSION = "1.35.0"
SHARED_SCHEMAS = REPO_ROOT.parent / "shared" / "schemas"
VALUES_DIR = REPO_ROOT / "values"
CI_VALUES_DIR = chart.UMBRELLA / "ci"
CUSTOM_GROUPS = ("monitoring.coreos.com", "gateway.networking.k8s.io")
STACK_OFF = {"kube-prometheus-stack.enabled": "false"}

VALUES_FILES = sorted(VALUES_DIR.rglob("*.yaml"))
CI_VALUES_FILES = sorted(CI_VALUES_DIR.glob("*-values.yaml"))
ALL_VALUES_FILES = VALUES_FILES + CI_VALUES_FILES


def file_id(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


def enables_stack(values_file: Path) -> bool:
    values = yaml.safe_load(values_file.read_text()) or {}
    default = yaml.safe_load((chart.UMBRELLA / "values.yaml").read_text())
    section = values.get("kube-prometheus-stack") or {}
    return bool(section.get("enabled", default["kube-prometheus-stack"]["enabled"]))


def render_profile(
    umbrella: Path,
    values_files: Sequence[Path],
    *,
    release: str = "r1",
    namespace: str = "kubeflow-user07",
    set_values: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    return chart.render(
        umbrella,
        release=release,
        namespace=namespace,
        values_files=values_files,
        set_values=set_values,
        kube_version=KUBERNETES_VERSION,
    )


def _strict(schema: Any) -> Any:
    """Closes every object schema that lists its properties: a misspelt field fails."""
    if isinstance(schema, dict):
        closed = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in closed
            and "additionalProperties" not in closed
            and not closed.get("x-kubernetes-preserve-unknown-fields")
        ):
            closed["additionalProperties"] = False
        return closed
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@cache
def custom_resource_schema(api_version: str, kind: str) -> dict[str, Any]:
    group, version = api_version.split("/")
    path = SHARED_SCHEMAS / group / f"{kind.lower()}_{version}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no schema for {api_version} {kind} at {path}")
    schema: dict[str, Any] = _strict(json.loads(path.read_text()))
    schema.pop("$schema", None)
    return schema


def validation_errors(obj: dict[str, Any]) -> list[str]:
    """Schema errors of one rendered object: built-in kinds by kubernetes-validate, custom
    kinds by their CRD schema made strict."""
    api_version, kind = obj["apiVersion"], obj["kind"]
    name = f"{kind}/{obj['metadata'].get('name')}"
    if api_version.split("/")[0] in CUSTOM_GROUPS:
        validator = jsonschema.Draft7Validator(custom_resource_schema(api_version, kind))
        return [
            f"{name}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(copy.deepcopy(obj))
        ]
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{name}: {'/'.join(map(str, error.path))}: {error.message}"]
    return []
