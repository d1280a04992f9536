"""Every values file renders, and every rendered object is valid for Kubernetes."""

from __future__ import annotations

import pytest

from local_stack import chart, manifests
from manifest_checks import (
    ALL_VALUES_FILES,
    STACK_OFF,
    VALUES_DIR,
    enables_stack,
    file_id,
    render_profile,
    validation_errors,
)

OUR_KINDS = {"Deployment", "Service", "ServiceMonitor", "PrometheusRule", "ConfigMap"}


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


@pytest.mark.parametrize("values_file", ALL_VALUES_FILES, ids=file_id)
def test_our_objects_render_and_validate(umbrella, values_file):
    """Platform files are rendered with the stack switched off here, so that our own objects
    are checked under their values on every machine; the next test adds the stack."""
    objects = render_profile(umbrella, [values_file], set_values=STACK_OFF)
    assert {o["kind"] for o in objects} >= OUR_KINDS
    errors = [error for obj in objects for error in validation_errors(obj)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    "values_file", [f for f in ALL_VALUES_FILES if enables_stack(f)], ids=file_id
)
def test_platform_profile_renders_with_the_stack(stack_chart, umbrella, values_file):
    objects = render_profile(umbrella, [values_file], release="monitoring", namespace="monitoring")
    kinds = {o["kind"] for o in objects}
    assert {"Prometheus", "Alertmanager"} <= kinds
    errors = [
        error
        for obj in objects
        if obj["kind"] in OUR_KINDS
        and obj["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "model-monitoring"
        for error in validation_errors(obj)
    ]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    "values_file", [f for f in ALL_VALUES_FILES if enables_stack(f)], ids=file_id
)
def test_the_stacks_prometheus_selects_our_monitors_and_rules(stack_chart, umbrella, values_file):
    objects = render_profile(umbrella, [values_file], release="monitoring", namespace="monitoring")
    [prometheus] = [o for o in objects if o["kind"] == "Prometheus"]
    spec = prometheus["spec"]
    for kind, selector_key in (
        ("ServiceMonitor", "serviceMonitorSelector"),
        ("PrometheusRule", "ruleSelector"),
    ):
        selector = spec.get(selector_key)
        assert selector is not None, f"{selector_key} missing: the stack would select nothing"
        ours = [
            o
            for o in objects
            if o["kind"] == kind and o["metadata"]["name"].startswith("monitoring-model-")
        ]
        assert ours, kind
        for obj in ours:
            assert manifests.LabelSelector(
                selector.get("matchLabels") or {}, tuple(selector.get("matchExpressions") or ())
            ).matches(obj["metadata"]["labels"]), f"{kind} {obj['metadata']['name']} not selected"


def test_the_stacks_grafana_sidecar_loads_our_dashboards(stack_chart, umbrella):
    objects = render_profile(
        umbrella, [VALUES_DIR / "prod.yaml"], release="monitoring", namespace="monitoring"
    )
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


KIND_TEST_VALUES = [
    VALUES_DIR / "kind.yaml",
    chart.REPO_ROOT / "tests" / "e2e" / "values-kind-e2e.yaml",
]


def test_the_kind_backends_values_render_valid_objects_that_deliver_to_the_webhook(umbrella):
    """The kind backend's values cannot be installed here; their render is checked instead."""
    objects = render_profile(
        umbrella,
        KIND_TEST_VALUES,
        release="monitoring",
        namespace="monitoring",
        set_values=STACK_OFF,
    )
    errors = [error for obj in objects for error in validation_errors(obj)]
    assert not errors, "\n".join(errors)
    [webhook] = [
        o
        for o in manifests.of_kind(objects, "Service")
        if o["metadata"]["name"] == "monitoring-model-exporter-retrain-webhook"
    ]
    [config] = manifests.of_kind(objects, "AlertmanagerConfig")
    urls = {c["url"] for r in config["spec"]["receivers"] for c in r.get("webhookConfigs", [])}
    port = webhook["spec"]["ports"][0]["port"]
    assert urls == {f"http://{webhook['metadata']['name']}.monitoring.svc:{port}/alerts"}
