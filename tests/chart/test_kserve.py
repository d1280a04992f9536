"""KServe, as the chart renders it for kserve.enabled: an InferenceService per variant.

KServe cannot run here; what the chart relies on it doing is encoded below as checks of the
rendered objects, each citing where KServe (v0.20.0, kserve/kserve,
pkg/controller/v1beta1/inferenceservice/) does it. The objects' schema is checked strictly by
test_render.py (ci/kserve-values.yaml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from delivery_chart import FULLNAME, NAMESPACE, one, render_profile, selects

from local_stack import chart
from modelmon.config import parse_settings
from modelmon.contract import Variant

KSERVE_PROFILE = chart.EXPORTER_CHART / "ci" / "kserve-values.yaml"
INFERENCE_SERVICE_LABEL = "serving.kserve.io/inferenceservice"


def render(values_file: Path | None = None, **values: str) -> list[dict[str, Any]]:
    return render_profile(KSERVE_PROFILE, values_file, **values)


def kserve_pod_labels(isvc: dict[str, Any]) -> dict[str, str]:
    """The labels KServe gives the predictor's pods (components/predictor.go, the component's
    metadata; reconcilers/deployment/deployment_reconciler.go): the InferenceService's labels,
    then spec.predictor.labels, then its own, `app` overwritten."""
    name = isvc["metadata"]["name"]
    return {
        **isvc["metadata"]["labels"],
        **isvc["spec"]["predictor"].get("labels", {}),
        INFERENCE_SERVICE_LABEL: name,
        "component": "predictor",
        "app": f"isvc.{name}-predictor",
    }


def test_each_variant_is_an_inference_service_running_the_exporter_as_that_variant():
    objects = render()
    for variant in Variant:
        isvc = one(objects, "InferenceService", f"{FULLNAME}-{variant}")
        assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
        predictor = isvc["spec"]["predictor"]
        # predictor_custom.go: the container KServe serves is the one named kserve-container
        [container] = predictor["containers"]
        assert container["name"] == "kserve-container"
        settings = parse_settings(container["args"], environ={})
        assert settings.variant is variant
        # deployment_reconciler.go adds only a TCP readiness probe, and resources default to
        # 1 CPU and 2 Gi (inference_service_defaults.go): the chart sets both
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["requests"]
        # pkg/validation/env_policy.go refuses PYTHONPATH in any predictor container
        assert all(env["name"] != "PYTHONPATH" for env in container.get("env", []))
        assert [port["name"] for port in container["ports"]] == ["http"]
        assert predictor["minReplicas"] == predictor["maxReplicas"]
        assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "none"
    exporters = [
        o
        for o in objects
        if o["kind"] == "Deployment"
        and o["metadata"]["labels"]["app.kubernetes.io/component"] == "exporter"
    ]
    assert exporters == [], "KServe makes the exporters' Deployments"


def test_the_charts_services_reach_kserves_pods_of_their_own_variant_only():
    objects = render()
    pods = {
        variant: kserve_pod_labels(one(objects, "InferenceService", f"{FULLNAME}-{variant}"))
        for variant in Variant
    }
    for variant in Variant:
        service = one(objects, "Service", f"{FULLNAME}-{variant}")
        for other, labels in pods.items():
            reached = selects({"matchLabels": service["spec"]["selector"]}, labels)
            assert reached is (other is variant), (variant, other)
    budget = one(objects, "PodDisruptionBudget", f"{FULLNAME}-stable")
    assert selects(budget["spec"]["selector"], pods[Variant.STABLE])


def test_the_monitor_scrapes_each_pod_once_not_through_kserves_service_too():
    objects = render(**{"serviceMonitor.enabled": "true"})
    monitor = one(objects, "ServiceMonitor")
    isvc = one(objects, "InferenceService", f"{FULLNAME}-stable")
    # reconcilers/service/service_reconciler.go: <name>-predictor, with the pods' labels
    kserve_service = kserve_pod_labels(isvc)
    ours = one(objects, "Service", f"{FULLNAME}-stable")["metadata"]["labels"]
    assert selects(monitor["spec"]["selector"], ours)
    assert not selects(monitor["spec"]["selector"], kserve_service)


def test_no_other_pod_of_the_release_is_one_kserves_pod_webhook_takes():
    # config/webhook/manifests.yaml: KServe's pod mutator (failurePolicy Fail) intercepts every
    # pod labelled serving.kserve.io/inferenceservice
    for o in render():
        if o["kind"] == "Deployment":
            assert INFERENCE_SERVICE_LABEL not in o["spec"]["template"]["metadata"]["labels"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"autoscaling.enabled": "true"}, "set autoscaling.enabled=false"),
        (
            {
                "delivery.engine": "argoRollouts",
                "gatewayAPI.enabled": "true",
                "canary.enabled": "false",
            },
            "choose one",
        ),
        ({"kserve.deploymentMode": "Serverless"}, "kserve/deploymentMode"),
    ],
)
def test_what_kserve_cannot_run_is_refused_by_name(values, message):
    with pytest.raises(chart.ChartError) as refused:
        render(**values)
    assert message in str(refused.value)


def test_the_namespace_counts_in_kserves_limit():
    assert NAMESPACE == "kubeflow-user07"
    with pytest.raises(chart.ChartError) as refused:
        render(fullnameOverride="an-exporter-named-to-fit-alone-x")  # 39 + 16 > 52
    assert "(52 characters with the namespace)" in str(refused.value)
