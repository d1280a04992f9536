"""Rendering and schema checks shared by the chart tests."""

from __future__ import annotations

import copy
import json
import tarfile
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from local_stack import chart
from local_stack.toolchain import REPO_ROOT

# The Kubernetes versions every profile is rendered for (--kube-version: the Capabilities a
# template sees) and validated against, oldest first. Each must satisfy both charts' kubeVersion
# (tests/chart/test_kube_versions.py) and have schemas of its own in kubernetes-validate.
KUBERNETES_VERSIONS = ("1.30.0", "1.35.0")
NEWEST_KUBERNETES = KUBERNETES_VERSIONS[-1]
SHARED_SCHEMAS = REPO_ROOT.parent / "shared" / "schemas"
VALUES_DIR = REPO_ROOT / "values"
CI_VALUES_DIR = chart.UMBRELLA / "ci"
EXPORTER_CI_VALUES_DIR = chart.EXPORTER_CHART / "ci"
CUSTOM_GROUPS = (
    "monitoring.coreos.com",
    "gateway.networking.k8s.io",
    "argoproj.io",
    "flagger.app",
    "serving.kserve.io",
)
STACK_OFF = {"kube-prometheus-stack.enabled": "false"}

VALUES_FILES = sorted(VALUES_DIR.rglob("*.yaml"))
CI_VALUES_FILES = sorted(CI_VALUES_DIR.glob("*-values.yaml"))
ALL_VALUES_FILES = VALUES_FILES + CI_VALUES_FILES
# chart-testing also installs the subchart on its own, with these (values of the subchart, not
# of the umbrella): render them with chart.EXPORTER_CHART.
EXPORTER_CI_VALUES_FILES = sorted(EXPORTER_CI_VALUES_DIR.glob("*-values.yaml"))


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
    kube_version: str = NEWEST_KUBERNETES,
) -> list[dict[str, Any]]:
    return chart.render(
        umbrella,
        release=release,
        namespace=namespace,
        values_files=values_files,
        set_values=set_values,
        kube_version=kube_version,
    )


def render_attached(
    umbrella: Path, set_values: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """user07's release as values/users/user07.yaml attaches it, without the stack."""
    return render_profile(
        umbrella,
        [VALUES_DIR / "users" / "user07.yaml"],
        release="user07",
        namespace="kubeflow-user07",
        set_values={**STACK_OFF, **(set_values or {})},
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


class _CrdLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader (libyaml's where there is one: the stack's CRDs are 4 MB of YAML) that
    reads a plain `=`, as in the CRDs' lists of operators, as the string it is, not as PyYAML's
    unsupported `value` tag."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", _CrdLoader.construct_yaml_str)


def _stack_crd_documents() -> Iterator[str]:
    """The CRD files that the kube-prometheus-stack chart in use bundles (a folder or a .tgz)."""
    source = chart.stack_chart_source()
    if source is None:
        return
    if source.is_dir():
        for path in sorted(source.rglob("crds/*.yaml")):
            yield path.read_text()
        return
    with tarfile.open(source) as archive:
        for member in archive.getmembers():
            path = Path(member.name)
            if member.isfile() and path.parent.name == "crds" and path.suffix == ".yaml":
                stream = archive.extractfile(member)
                if stream is not None:
                    yield stream.read().decode()


@cache
def stack_crd_schemas() -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) -> openAPIV3Schema, of each CRD the kube-prometheus-stack chart in use
    installs: the schemas of the stack's own resources (Prometheus, Alertmanager), which
    ../shared/schemas does not hold. Empty without the stack chart."""
    schemas: dict[tuple[str, str], Any] = {}
    for text in _stack_crd_documents():
        for crd in yaml.load_all(text, Loader=_CrdLoader):
            if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


@cache
def custom_resource_schema(api_version: str, kind: str) -> dict[str, Any]:
    """The strict schema of a custom kind: from ../shared/schemas, else (for the stack's own
    kinds) from the CRDs bundled in the kube-prometheus-stack chart in use."""
    group, version = api_version.split("/")
    path = SHARED_SCHEMAS / group / f"{kind.lower()}_{version}.json"
    if path.is_file():
        schema: dict[str, Any] = json.loads(path.read_text())
    elif (api_version, kind) in stack_crd_schemas():
        schema = copy.deepcopy(stack_crd_schemas()[(api_version, kind)])
    else:
        raise FileNotFoundError(
            f"no schema for {api_version} {kind}: not at {path}, nor among the CRDs of the "
            "kube-prometheus-stack chart"
        )
    schema = _strict(schema)
    schema.pop("$schema", None)
    return schema


def major_minor(kube_version: str) -> str:
    return ".".join(kube_version.removeprefix("v").split(".")[:2])


def validation_errors(obj: dict[str, Any], kube_version: str = NEWEST_KUBERNETES) -> list[str]:
    """Schema errors of one rendered object: built-in kinds by kubernetes-validate (strict) at
    `kube_version`, custom kinds by their CRD schema made strict."""
    name = f"{obj['kind']}/{obj['metadata'].get('name')}"
    try:
        canonical = json.dumps(obj, sort_keys=True)
    except TypeError as error:  # a value YAML types as no JSON type (a date): quote it
        return [f"{name}: {error}"]
    if obj["apiVersion"].split("/")[0] in CUSTOM_GROUPS:
        errors = _custom_resource_errors(canonical)
    else:
        errors = _builtin_errors(canonical, kube_version)
    return [f"{name}: {error}" for error in errors]


# Both are cached by the object's text: the profiles share most objects (the stack's above all),
# and kubernetes-validate reads its 1.3 MB of definitions for every call.
@cache
def _custom_resource_errors(canonical: str) -> tuple[str, ...]:
    obj = json.loads(canonical)
    validator = jsonschema.Draft7Validator(custom_resource_schema(obj["apiVersion"], obj["kind"]))
    return tuple(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)
    )


@cache
def _builtin_errors(canonical: str, kube_version: str) -> tuple[str, ...]:
    try:
        used = kubernetes_validate.validate(json.loads(canonical), kube_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return (f"{'/'.join(map(str, error.path))}: {error.message}",)
    # kubernetes-validate falls back to the newest schemas not newer than the version asked
    # for: a version it has no schemas of would be checked against another one's.
    if used != major_minor(kube_version):
        raise AssertionError(
            f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for "
            f"Kubernetes {major_minor(kube_version)} (it used {used})"
        )
    return ()
