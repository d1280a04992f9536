"""Flagger, as the chart renders it for delivery.engine=flagger.

Flagger cannot run here; what the chart relies on it doing is encoded below as checks of the
rendered objects, each citing where Flagger (v1.44.0, fluxcd/flagger) does it. The objects'
schemas are checked strictly by test_render.py (ci/flagger-values.yaml).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from delivery_chart import (
    FULLNAME,
    NAMESPACE,
    chart_gate_values,
    one,
    printed_notes,
    render_profile,
    selects,
)

from local_stack import chart
from modelmon.config import parse_settings
from modelmon.contract import PRIMARY_SUFFIX, Variant
from modelmon.gate.decision import GatePolicy
from modelmon.gate.promql import QueryParams, values_key, verdict_query
from modelmon.ops.cli import build_parser
from modelmon.ops.commands.delivery import policy_of
from modelmon.ops.durations import seconds
from modelmon.ops.gate_webhook import Hook
from modelmon.variant_source import variant_from_labels

FLAGGER_PROFILE = chart.EXPORTER_CHART / "ci" / "flagger-values.yaml"
# Flagger's default -selector-labels, in the order it tries them (cmd/flagger/main.go).
FLAGGER_SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")


def render(values_file: Path | None = None, **values: str) -> list[dict[str, Any]]:
    return render_profile(FLAGGER_PROFILE, values_file, **values)


def selector_label(deployment: dict[str, Any]) -> str:
    """pkg/canary/deployment_controller.go, getSelectorLabel."""
    match_labels = deployment["spec"]["selector"]["matchLabels"]
    return next(label for label in FLAGGER_SELECTOR_LABELS if label in match_labels)


def primary_pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    """pkg/canary/deployment_controller.go, createPrimaryDeployment: the target's pod labels, the
    selector label's value with -primary appended (pkg/canary/util.go, makePrimaryLabels)."""
    label = selector_label(deployment)
    labels = dict(deployment["spec"]["template"]["metadata"]["labels"])
    labels[label] = f"{labels[label]}-primary"
    return labels


def flagger_services(canary: dict[str, Any], target: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Services Flagger makes (pkg/router/kubernetes_default.go, reconcileService): named
    <service.name>, -primary and -canary; labels from spec.service.{apex,primary,canary}.labels
    plus <selector label>: <Service name>; selector <selector label>: the role's pod value."""
    label = selector_label(target)
    value = target["spec"]["selector"]["matchLabels"][label]
    apex = canary["spec"]["service"]["name"]
    services = {}
    for role, name, pods in (
        ("apex", apex, f"{value}-primary"),
        ("primary", f"{apex}-primary", f"{value}-primary"),
        ("canary", f"{apex}-canary", value),
    ):
        labels = dict(canary["spec"]["service"][role]["labels"]) | {label: name}
        services[role] = {"name": name, "labels": labels, "selector": {label: pods}}
    return services


def serves(service: dict[str, Any], pod_labels: dict[str, str]) -> bool:
    """Whether a Service's selector (its spec, or one of flagger_services) picks the pod."""
    return selects({"matchLabels": service["selector"]}, pod_labels)


def test_the_metric_template_asks_prometheus_the_gates_own_verdict(tmp_path):
    overrides = {"labelDelay": "30m", "window": "3h", "minFeedback": 500}
    values_file = tmp_path / "gate.yaml"  # --set would make the numbers strings
    values_file.write_text(yaml.safe_dump({"delivery": {"gate": overrides}}))
    template = one(render(values_file), "MetricTemplate")
    gate = chart_gate_values() | overrides
    policy = GatePolicy(
        **{field.name: gate[values_key(field.name)] for field in dataclasses.fields(GatePolicy)}
    )
    params = QueryParams.of(
        f'user_id="user07",namespace="{NAMESPACE}"', gate["window"], gate["labelDelay"], policy
    )
    query = template["spec"]["query"]
    assert query.strip() == verdict_query(params)
    # pkg/metrics/observers/render.go, RenderQuery: the query is a Go template; with no action
    # in it, what Flagger sends is the text itself.
    assert "{{" not in query
    assert template["spec"]["provider"] == {
        "type": "prometheus",
        "address": "http://prometheus-operated.monitoring.svc:9090",
    }


def flagger_check(metric: dict[str, Any], value: float) -> bool:
    """pkg/controller/scheduler_metrics.go, runMetricChecks: a value below thresholdRange.min
    or above thresholdRange.max is a failed check."""
    bounds = metric["thresholdRange"]
    return not (
        ("min" in bounds and value < bounds["min"]) or ("max" in bounds and value > bounds["max"])
    )


def test_a_rollback_verdict_is_a_failed_check_and_hold_and_promote_pass():
    canary = one(render(), "Canary")
    [metric] = canary["spec"]["analysis"]["metrics"]
    assert metric["templateRef"] == {"name": f"{FULLNAME}-gate", "namespace": NAMESPACE}
    assert flagger_check(metric, 1.0)
    assert flagger_check(metric, 0.0)
    assert not flagger_check(metric, -1.0)
    # pkg/controller/scheduler.go, advanceCanary: it rolls back once FailedChecks reaches
    # analysis.threshold; a query Prometheus does not answer is a failed check too, so one
    # blip alone does not roll back.
    assert canary["spec"]["analysis"]["threshold"] == 2


def test_the_canary_steps_through_the_values_steps_then_promotes():
    canary = one(render(**{"delivery.steps": "{10,25,50}"}), "Canary")
    analysis = canary["spec"]["analysis"]
    # pkg/controller/scheduler.go, nextStepWeight and maxWeight: with stepWeights and no
    # maxWeight, the last step is the largest weight and the next is promotion; `iterations`
    # would make it blue/green, with no weights at all.
    assert analysis["stepWeights"] == [10, 25, 50]
    assert "maxWeight" not in analysis
    assert "iterations" not in analysis
    assert canary["spec"]["provider"] == "gatewayapi:v1"
    assert canary["spec"]["targetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": FULLNAME,
    }


def test_steps_and_promotion_wait_for_the_gate_servers_answer():
    objects = render(**{"delivery.soak": "15m"})
    canary = one(objects, "Canary")
    service = one(objects, "Service", f"{FULLNAME}-gate")
    port = service["spec"]["ports"][0]["port"]
    hooks = {hook["type"]: hook["url"] for hook in canary["spec"]["analysis"]["webhooks"]}
    base = f"http://{FULLNAME}-gate.{NAMESPACE}.svc:{port}/flagger"
    assert hooks == {str(hook): f"{base}/{hook}" for hook in Hook}

    server = one(objects, "Deployment", f"{FULLNAME}-gate")
    assert serves(service["spec"], server["spec"]["template"]["metadata"]["labels"])
    [container] = server["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["modelmon-ops", "serve-gate"]
    args = build_parser({}).parse_args(["serve-gate", *container["args"]])
    gate = chart_gate_values()
    assert policy_of(args) == GatePolicy(
        **{field.name: gate[values_key(field.name)] for field in dataclasses.fields(GatePolicy)}
    )
    assert (args.window, args.label_delay) == (gate["window"], gate["labelDelay"])
    assert seconds(args.soak) == 15 * 60
    assert (args.user, args.namespace) == ("user07", NAMESPACE)
    assert args.port == int(container["ports"][0]["containerPort"])


def test_flaggers_services_reach_the_exporters_pods_and_nothing_else():
    objects = render()
    canary = one(objects, "Canary")
    target = one(objects, "Deployment", canary["spec"]["targetRef"]["name"])
    services = flagger_services(canary, target)
    canary_pods = target["spec"]["template"]["metadata"]["labels"]
    primary_pods = primary_pod_labels(target)
    assert serves(services["canary"], canary_pods)
    assert not serves(services["canary"], primary_pods)
    assert serves(services["primary"], primary_pods)
    assert not serves(services["primary"], canary_pods)
    assert serves(services["apex"], primary_pods)
    label = selector_label(target)
    for other in objects:
        if other["kind"] == "Deployment" and other is not target:
            assert label not in other["spec"]["template"]["metadata"]["labels"], (
                f"{other['metadata']['name']} would be selected by Flagger's Services"
            )
    # The chart's own Services are not Flagger's: it renders none of those names.
    names = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    assert not names & {service["name"] for service in services.values()}


def test_each_exporter_knows_its_variant_from_the_labels_flagger_gives_its_pod():
    objects = render()
    target = one(objects, "Deployment", FULLNAME)
    [container] = target["spec"]["template"]["spec"]["containers"]
    settings = parse_settings(container["args"], environ={})
    assert settings.variant_primary_label == selector_label(target)

    def labels_file(labels: dict[str, str]) -> str:
        return "".join(f'{key}="{value}"\n' for key, value in labels.items())

    primary = labels_file(primary_pod_labels(target))
    canary = labels_file(target["spec"]["template"]["metadata"]["labels"])
    assert variant_from_labels(primary, settings.variant_primary_label) is Variant.STABLE
    assert variant_from_labels(canary, settings.variant_primary_label) is Variant.CANARY
    assert primary_pod_labels(target)[selector_label(target)].endswith(PRIMARY_SUFFIX)


def test_feedback_goes_to_flaggers_service_of_the_variant_that_predicted():
    objects = render()
    canary = one(objects, "Canary")
    services = flagger_services(canary, one(objects, "Deployment", FULLNAME))
    # pkg/router/gateway_api.go, Reconcile: Flagger owns the HTTPRoute named after the apex
    # Service and rewrites it; the chart renders only a route of its own for feedback.
    route_names = {o["metadata"]["name"] for o in objects if o["kind"] == "HTTPRoute"}
    assert route_names == {f"{FULLNAME}-feedback"}
    assert canary["spec"]["service"]["gatewayRefs"] == [
        {"name": "gateway", "namespace": "gateway-system"}
    ]
    feedback = one(objects, "HTTPRoute", f"{FULLNAME}-feedback")
    by_header = {
        m["headers"][0]["value"]: rule["backendRefs"][0]["name"]
        for rule in feedback["spec"]["rules"]
        for m in rule["matches"]
        if m.get("headers")
    }
    assert by_header == {
        str(Variant.STABLE): services["primary"]["name"],
        str(Variant.CANARY): services["canary"]["name"],
    }


def test_the_monitor_scrapes_primary_and_canary_once_each():
    objects = render(**{"serviceMonitor.enabled": "true"})
    services = flagger_services(one(objects, "Canary"), one(objects, "Deployment", FULLNAME))
    monitor = one(objects, "ServiceMonitor")
    selected = {
        role
        for role, service in services.items()
        if selects(monitor["spec"]["selector"], service["labels"])
    }
    assert selected == {"primary", "canary"}, "the apex Service selects the primary's pods again"
    [endpoint] = monitor["spec"]["endpoints"]
    assert "relabelings" not in endpoint, "a pod keeps its role under Flagger"


def relabel(rules: list[dict[str, Any]], target: dict[str, str]) -> dict[str, str]:
    """Prometheus `replace` relabeling: sourceLabels joined by ';', the regex anchored."""
    labels = dict(target)
    for rule in rules:
        joined = ";".join(labels.get(name, "") for name in rule["sourceLabels"])
        matched = re.fullmatch(rule["regex"], joined)
        if matched:
            labels[rule["targetLabel"]] = matched.expand(
                re.sub(r"\$\{(\d+)\}", r"\\\1", rule["replacement"])
            )
    return labels


def test_the_pod_monitor_names_the_service_flagger_puts_in_front_of_each_pod():
    objects = render(**{"serviceMonitor.enabled": "false", "podMonitor.enabled": "true"})
    target = one(objects, "Deployment", FULLNAME)
    services = flagger_services(one(objects, "Canary"), target)
    [endpoint] = one(objects, "PodMonitor")["spec"]["podMetricsEndpoints"]

    def meta(labels: dict[str, str]) -> dict[str, str]:
        return {
            "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key): value
            for key, value in labels.items()
        }

    canary_pod = meta(target["spec"]["template"]["metadata"]["labels"])
    primary_pod = meta(primary_pod_labels(target))
    assert relabel(endpoint["relabelings"], primary_pod)["service"] == services["primary"]["name"]
    assert relabel(endpoint["relabelings"], canary_pod)["service"] == services["canary"]["name"]


def test_the_disruption_budget_and_the_test_pod_follow_flaggers_names():
    objects = render()
    target = one(objects, "Deployment", FULLNAME)
    budget = one(objects, "PodDisruptionBudget")
    assert selects(budget["spec"]["selector"], primary_pod_labels(target))
    test_pod = one(objects, "Pod")
    script = test_pod["spec"]["containers"][0]["command"][-1]
    assert f'base="http://{FULLNAME}-primary:' in script


def test_flagger_needs_the_gateway_api():
    with pytest.raises(chart.ChartError) as refused:
        render(**{"gatewayAPI.enabled": "false"})
    assert "delivery.engine=flagger: set gatewayAPI.enabled=true" in str(refused.value)


def test_the_notes_name_the_canary_and_the_gate():
    printed = printed_notes(FLAGGER_PROFILE)
    assert f"Canary {FULLNAME} makes every new revision of Deployment" in printed
    assert f"MetricTemplate {FULLNAME}-gate" in printed
    assert f"get canary {FULLNAME}" in printed
    assert f"svc/{FULLNAME}-primary" in printed
