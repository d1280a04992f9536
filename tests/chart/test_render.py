"""Every values file renders, and every rendered object is valid for every supported
Kubernetes version: each profile is rendered with that version's Capabilities and each object is
checked against that version's schemas (custom kinds: the CRD schemas)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pytest

from local_stack import chart, manifests
from local_stack.manifests import Manifest
from manifest_checks import (
    ALL_VALUES_FILES,
    EXPORTER_CI_VALUES_FILES,
    KUBERNETES_VERSIONS,
    STACK_OFF,
    VALUES_DIR,
    enables_stack,
    file_id,
    render_profile,
    validation_errors,
)

OUR_KINDS = {"Deployment", "Service", "ServiceMonitor", "PrometheusRule", "ConfigMap"}
# The subchart alone, as chart-testing installs it: no monitoring.coreos.com kinds.
EXPORTER_KINDS = {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy"}
# The subchart delivered by Argo Rollouts: the exporter is a Rollout, gated by its template.
ARGO_KINDS = {"Rollout", "AnalysisTemplate", "HTTPRoute", "Service", "PodDisruptionBudget"}
# The subchart delivered by Flagger: its target Deployment, the Canary, and the gate's pieces.
FLAGGER_KINDS = {"Deployment", "Canary", "MetricTemplate", "HTTPRoute", "Service"}
# The subchart's exporters served by KServe, behind the chart's Services and router.
KSERVE_KINDS = {"InferenceService", "Service", "Deployment", "PodDisruptionBudget"}
PROFILES = ALL_VALUES_FILES + EXPORTER_CI_VALUES_FILES
STACK_PROFILES = [f for f in ALL_VALUES_FILES if enables_stack(f)]
# Platform installs: the release and namespace the README installs the stack profiles with.
PLATFORM = {"release": "monitoring", "namespace": "monitoring"}

# What kube-prometheus-stack makes of a platform profile, as far as our objects depend on it:
# the Prometheus selectors and the Grafana dashboard sidecar's settings. The tests without the
# stack chart check our objects against these; the tests with it hold these to the real chart.
SELECTORS = {
    "ServiceMonitor": "serviceMonitorSelector",
    "PodMonitor": "podMonitorSelector",
    "PrometheusRule": "ruleSelector",
}
STACK_SELECTOR = {"matchLabels": {"release": PLATFORM["release"]}}
SIDECAR_ENV = {"LABEL": "grafana_dashboard", "LABEL_VALUE": "1", "NAMESPACE": "ALL"}

versions = pytest.mark.parametrize("kube_version", KUBERNETES_VERSIONS, ids=lambda v: f"k8s{v}")


@cache
def rendered(
    umbrella: Path,
    values_files: tuple[Path, ...],
    kube_version: str,
    *,
    stack: bool,
    release: str = "r1",
    namespace: str = "kubeflow-user07",
) -> Sequence[Manifest]:
    """One render per profile, version and stack setting, shared by the tests here (helm
    template is the cost); the objects are shared too: read them, never change them.

    A subchart profile renders the subchart on its own; an umbrella profile renders with the
    stack switched off unless `stack`."""
    if values_files[0].is_relative_to(chart.EXPORTER_CHART):
        return chart.render(
            chart.EXPORTER_CHART,
            release=release,
            namespace=namespace,
            values_files=values_files,
            kube_version=kube_version,
        )
    return render_profile(
        umbrella,
        values_files,
        release=release,
        namespace=namespace,
        set_values=None if stack else STACK_OFF,
        kube_version=kube_version,
    )


def errors_of(objects: Sequence[Manifest], kube_version: str) -> str:
    return "\n".join(error for obj in objects for error in validation_errors(obj, kube_version))


@pytest.mark.parametrize("values_file", ALL_VALUES_FILES, ids=file_id)
def test_lint_strict(umbrella, values_file):
    output = chart.helm(
        "lint",
        "--strict",
        str(umbrella),
        "--values",
        str(values_file),
        *(["--set", "kube-prometheus-stack.enabled=false"] if enables_stack(values_file) else []),
    )
    assert "0 chart(s) failed" in output


@versions
@pytest.mark.parametrize("values_file", PROFILES, ids=file_id)
def test_every_profile_renders_valid_objects_with_the_stack_off(
    umbrella, values_file, kube_version
):
    """Every profile, the subchart's own included, on every machine: platform profiles with the
    stack switched off (and the release and namespace they are installed with), so that our own
    objects are checked under their values without the stack chart; the next tests add it."""
    names = PLATFORM if values_file in STACK_PROFILES else {}
    objects = rendered(umbrella, (values_file,), kube_version, stack=False, **names)
    expected = EXPORTER_KINDS if values_file in EXPORTER_CI_VALUES_FILES else OUR_KINDS
    if values_file.name.startswith("argo-rollouts"):
        expected = ARGO_KINDS
    if values_file.name.startswith("flagger"):
        expected = FLAGGER_KINDS
    if values_file.name.startswith("kserve"):
        expected = KSERVE_KINDS
    assert {o["kind"] for o in objects} >= expected
    errors = errors_of(objects, kube_version)
    assert not errors, errors


@versions
@pytest.mark.parametrize("values_file", STACK_PROFILES, ids=file_id)
def test_every_object_of_a_platform_profile_is_valid_with_the_stack(
    stack_chart, umbrella, values_file, kube_version
):
    """Ours and the stack's alike: the stack's objects are what the same install applies."""
    objects = rendered(umbrella, (values_file,), kube_version, stack=True, **PLATFORM)
    assert {"Prometheus", "Alertmanager"} <= {o["kind"] for o in objects}
    errors = errors_of(objects, kube_version)
    assert not errors, errors


@versions
@pytest.mark.parametrize("values_file", STACK_PROFILES, ids=file_id)
def test_the_stack_changes_none_of_our_objects(stack_chart, umbrella, values_file, kube_version):
    """So what the tests without the stack chart check of our objects holds with it."""
    with_stack = rendered(umbrella, (values_file,), kube_version, stack=True, **PLATFORM)
    ours = rendered(umbrella, (values_file,), kube_version, stack=False, **PLATFORM)
    changed = [f"{o['kind']}/{o['metadata']['name']}" for o in ours if o not in with_stack]
    assert not changed, f"changed or missing with the stack on: {changed}"


def assert_selected(objects: Sequence[Manifest], prometheus_spec: Manifest) -> None:
    """Each of our monitors and rules is one the Prometheus with this spec selects."""
    for kind, selector_key in SELECTORS.items():
        selector = prometheus_spec.get(selector_key)
        assert selector is not None, f"{selector_key} missing: the stack would select nothing"
        ours = [
            o
            for o in objects
            if o["kind"] == kind and o["metadata"]["name"].startswith("monitoring-model-")
        ]
        assert ours or kind == "PodMonitor", kind
        for obj in ours:
            assert manifests.LabelSelector(
                selector.get("matchLabels") or {}, tuple(selector.get("matchExpressions") or ())
            ).matches(obj["metadata"]["labels"]), f"{kind} {obj['metadata']['name']} not selected"


@versions
@pytest.mark.parametrize("values_file", STACK_PROFILES, ids=file_id)
def test_the_stacks_prometheus_would_select_our_monitors_and_rules(
    umbrella, values_file, kube_version
):
    """Without the stack chart: against the selectors it sets (held to it by the next test)."""
    objects = rendered(umbrella, (values_file,), kube_version, stack=False, **PLATFORM)
    assert_selected(objects, dict.fromkeys(SELECTORS.values(), STACK_SELECTOR))


@versions
@pytest.mark.parametrize("values_file", STACK_PROFILES, ids=file_id)
def test_the_stacks_prometheus_selects_our_monitors_and_rules(
    stack_chart, umbrella, values_file, kube_version
):
    objects = rendered(umbrella, (values_file,), kube_version, stack=True, **PLATFORM)
    [prometheus] = [o for o in objects if o["kind"] == "Prometheus"]
    spec = prometheus["spec"]
    assert {key: spec.get(key) for key in SELECTORS.values()} == dict.fromkeys(
        SELECTORS.values(), STACK_SELECTOR
    ), "STACK_SELECTOR is no longer what the stack sets"
    assert_selected(objects, spec)


def assert_the_sidecar_loads_our_dashboards(objects: Sequence[Manifest], env: Manifest) -> None:
    """The sidecar with this environment loads our dashboards, and only those."""
    ours = [
        o
        for o in manifests.of_kind(objects, "ConfigMap")
        if o["metadata"]["labels"].get("app.kubernetes.io/part-of") == "model-monitoring"
    ]
    loaded = [o for o in ours if o["metadata"]["labels"].get(env["LABEL"]) == env["LABEL_VALUE"]]
    shipped = sorted(p.name for p in (chart.REPO_ROOT / "dashboards").glob("*.json"))
    files = sorted(
        name.removeprefix("monitoring-monitoring-") for o in loaded for name in o["data"]
    )
    assert files == shipped, "file names are <namespace>-<release>-<dashboard>.json"
    for dashboard in loaded:
        assert env["FOLDER_ANNOTATION"] in dashboard["metadata"]["annotations"]
    assert len(ours) > len(loaded), "the router's weight ConfigMap is ours too, and not loaded"
    assert env["NAMESPACE"] == "ALL", "per-user dashboards live in the users' namespaces"


def sidecar_env_of(values_file: Path) -> dict[str, str]:
    """SIDECAR_ENV, and the folder annotation the profile gives the stack's sidecar."""
    values = chart.merged_values([values_file])
    sidecar = values["kube-prometheus-stack"]["grafana"]["sidecar"]["dashboards"]
    return {**SIDECAR_ENV, "FOLDER_ANNOTATION": sidecar["folderAnnotation"]}


def runs_grafana(values_file: Path) -> bool:
    stack = chart.merged_values([values_file]).get("kube-prometheus-stack") or {}
    return bool((stack.get("grafana") or {}).get("enabled", True))


GRAFANA_PROFILES = [p for p in STACK_PROFILES if runs_grafana(p)]


@versions
@pytest.mark.parametrize("profile", GRAFANA_PROFILES, ids=file_id)
def test_the_stacks_grafana_sidecar_would_load_our_dashboards(umbrella, profile, kube_version):
    """Without the stack chart: against the sidecar settings it makes (held to it next), for
    every profile whose stack runs Grafana."""
    objects = rendered(umbrella, (profile,), kube_version, stack=False, **PLATFORM)
    assert_the_sidecar_loads_our_dashboards(objects, sidecar_env_of(profile))


@versions
@pytest.mark.parametrize("profile", GRAFANA_PROFILES, ids=file_id)
def test_the_stacks_grafana_sidecar_loads_our_dashboards(
    stack_chart, umbrella, profile, kube_version
):
    objects = rendered(umbrella, (profile,), kube_version, stack=True, **PLATFORM)
    [grafana] = [
        o
        for o in objects
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "monitoring-grafana"
    ]
    [sidecar] = [
        c
        for c in grafana["spec"]["template"]["spec"]["containers"]
        if c["name"] == "grafana-sc-dashboard"
    ]
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    pinned = sidecar_env_of(profile)
    assert {key: env.get(key) for key in pinned} == pinned, "SIDECAR_ENV is not the stack's"
    assert_the_sidecar_loads_our_dashboards(objects, env)


KIND_TEST_VALUES = (
    VALUES_DIR / "kind.yaml",
    chart.REPO_ROOT / "tests" / "e2e" / "values-kind-e2e.yaml",
)


@versions
def test_the_kind_backends_values_render_valid_objects_that_deliver_to_the_webhook(
    umbrella, kube_version
):
    """The kind backend's values cannot be installed here; their render is checked instead."""
    objects = rendered(umbrella, KIND_TEST_VALUES, kube_version, stack=False, **PLATFORM)
    errors = errors_of(objects, kube_version)
    assert not errors, errors
    [webhook] = [
        o
        for o in manifests.of_kind(objects, "Service")
        if o["metadata"]["name"] == "monitoring-model-exporter-retrain-webhook"
    ]
    [config] = manifests.of_kind(objects, "AlertmanagerConfig")
    urls = {c["url"] for r in config["spec"]["receivers"] for c in r.get("webhookConfigs", [])}
    port = webhook["spec"]["ports"][0]["port"]
    assert urls == {f"http://{webhook['metadata']['name']}.monitoring.svc:{port}/alerts"}
