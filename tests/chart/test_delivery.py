"""Argo Rollouts, as the chart renders it for delivery.engine=argoRollouts.

Argo Rollouts cannot run here; what the chart relies on it doing is encoded below as checks of
the rendered objects, each citing where Argo Rollouts (v1.9.1, argoproj/argo-rollouts) or its
Gateway API plugin (v0.15.0, argoproj-labs/rollouts-plugin-trafficrouter-gatewayapi) does it.
The objects' schemas are checked strictly by test_render.py (ci/argo-rollouts-values.yaml).
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
)

from local_stack import chart
from modelmon.config import parse_settings
from modelmon.contract import VARIANT_POD_LABEL, Variant
from modelmon.gate.decision import GatePolicy
from modelmon.gate.promql import CHART_COPY, QueryParams, chart_copy, values_key, verdict_query

ARGO_PROFILE = chart.EXPORTER_CHART / "ci" / "argo-rollouts-values.yaml"


def render(values_file: Path | None = None, **values: str) -> list[dict[str, Any]]:
    return render_profile(ARGO_PROFILE, values_file, **values)


def test_the_charts_copy_of_the_verdict_query_is_generated_from_the_gate():
    copy = chart.EXPORTER_CHART / CHART_COPY
    assert copy.read_text() == chart_copy(), f"{copy} is stale: run `make gate-query`"


def test_the_charts_gate_defaults_are_the_gates():
    gate = chart_gate_values()
    for field in dataclasses.fields(GatePolicy):
        assert gate[values_key(field.name)] == field.default, field.name


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "labelDelay": "30m",
            "window": "3h",
            "alpha": 0.01,
            "minFeedback": 500,
            "maxLatencyP95Seconds": 0.25,
        },
    ],
    ids=["defaults", "overridden"],
)
def test_the_analysis_template_asks_prometheus_the_gates_own_verdict(overrides, tmp_path):
    values_file = tmp_path / "gate.yaml"  # --set would make the numbers strings
    values_file.write_text(yaml.safe_dump({"delivery": {"gate": overrides}}))
    template = one(render(values_file), "AnalysisTemplate")
    [metric] = template["spec"]["metrics"]
    gate = chart_gate_values() | overrides
    policy = GatePolicy(
        **{field.name: gate[values_key(field.name)] for field in dataclasses.fields(GatePolicy)}
    )
    params = QueryParams.of(
        f'user_id="user07",namespace="{NAMESPACE}"', gate["window"], gate["labelDelay"], policy
    )
    assert metric["provider"]["prometheus"]["query"].strip() == verdict_query(params)


def evaluate(condition: str, result: list[float]) -> bool:
    """An Argo Rollouts condition (expr language) of the two forms the chart uses."""
    assert re.fullmatch(r"len\(result\) > 0 && result\[0\] == -?\d+", condition), condition
    python = condition.replace("&&", "and")
    return bool(eval(python, {"__builtins__": {"len": len}}, {"result": result}))  # noqa: S307


def measurement(metric: dict[str, Any], result: list[float]) -> str:
    """utils/evaluate/evaluate.go, EvaluateResult: failure is checked first; with both
    conditions set and neither true the measurement is Inconclusive."""
    if evaluate(metric["failureCondition"], result):
        return "Failed"
    if evaluate(metric["successCondition"], result):
        return "Successful"
    return "Inconclusive"


def test_the_gates_verdicts_are_argo_rollouts_measurements_that_promote_hold_and_abort():
    [metric] = one(render(), "AnalysisTemplate")["spec"]["metrics"]
    # metricproviders/prometheus/prometheus.go, processResponse: a vector is a list of values.
    assert measurement(metric, [1.0]) == "Successful"
    assert measurement(metric, [0.0]) == "Inconclusive"
    assert measurement(metric, [-1.0]) == "Failed"
    # analysis/analysis.go, assessMetricStatus: one success ends the metric as Successful at
    # once (consecutiveSuccessLimit 1), so a step completes as soon as the gate promotes
    # (rollout/canary.go, completedCurrentCanaryStep, needs a Successful run); one failure
    # fails it (failureLimit 0) and the Rollout aborts (rollout/analysis.go); holds never
    # exceed inconclusiveLimit before count is reached, and then the run is Inconclusive and
    # the Rollout pauses for a person.
    assert metric["consecutiveSuccessLimit"] == 1
    assert metric["failureLimit"] == 0
    assert metric["inconclusiveLimit"] == metric["count"] > 1
    # utils/analysis/factory.go, ValidateMetric.
    assert metric["count"] >= metric["failureLimit"] + metric["consecutiveSuccessLimit"]
    assert metric["interval"]


def test_each_step_is_set_soaked_and_gated_before_the_next():
    rollout = one(render(**{"delivery.steps": "{10,25,50}", "delivery.soak": "15m"}), "Rollout")
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    assert steps == [
        step
        for weight in (10, 25, 50)
        for step in (
            {"setWeight": weight},
            {"pause": {"duration": "15m"}},
            {"analysis": {"templates": [{"templateName": f"{FULLNAME}-gate"}]}},
        )
    ]


def test_pods_get_their_variant_by_role_and_the_exporter_reads_it_live():
    objects = render()
    rollout = one(objects, "Rollout")
    canary = rollout["spec"]["strategy"]["canary"]
    # rollout/ephemeralmetadata.go: these labels are put on (and patched onto running) pods by
    # role, overwriting the template's; a label a role no longer wants is deleted, so the
    # template must not carry it.
    assert canary["stableMetadata"]["labels"] == {VARIANT_POD_LABEL: str(Variant.STABLE)}
    assert canary["canaryMetadata"]["labels"] == {VARIANT_POD_LABEL: str(Variant.CANARY)}
    template = rollout["spec"]["template"]
    assert VARIANT_POD_LABEL not in template["metadata"]["labels"]
    for variant in Variant:
        service = one(objects, "Service", f"{FULLNAME}-{variant}")
        assert service["spec"]["selector"][VARIANT_POD_LABEL] == str(variant)
    assert canary["stableService"] == f"{FULLNAME}-{Variant.STABLE}"
    assert canary["canaryService"] == f"{FULLNAME}-{Variant.CANARY}"

    [container] = template["spec"]["containers"]
    settings = parse_settings(container["args"], environ={})
    assert settings.variant_labels_file is not None
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volume_name = mounts[str(settings.variant_labels_file.parent)]
    [volume] = [v for v in template["spec"]["volumes"] if v["name"] == volume_name]
    [item] = volume["downwardAPI"]["items"]
    assert item == {
        "path": settings.variant_labels_file.name,
        "fieldRef": {"fieldPath": "metadata.labels"},
    }


def test_the_plugins_route_lists_both_services_in_every_rule_and_feedback_has_its_own():
    objects = render()
    routing = one(objects, "Rollout")["spec"]["strategy"]["canary"]["trafficRouting"]
    plugin = routing["plugins"]["argoproj-labs/gatewayAPI"]
    route = one(objects, "HTTPRoute", plugin["httpRoute"])
    assert plugin["namespace"] == NAMESPACE
    # pkg/plugin/httproute.go, setHTTPRouteWeight: it rewrites the stable and canary weights in
    # every rule of its route (a stable-only feedback rule would be weighted 0 once the canary
    # has all the traffic) and skips a canary-only rule as one of its own header routes
    # (isHTTPManagedRule); so its route holds only the split, feedback has a route of its own.
    wanted = {f"{FULLNAME}-{variant}" for variant in Variant}
    for rule in route["spec"]["rules"]:
        assert {ref["name"] for ref in rule["backendRefs"]} == wanted
    feedback = one(objects, "HTTPRoute", f"{FULLNAME}-feedback")
    by_header = {
        m["headers"][0]["value"]: rule["backendRefs"][0]["name"]
        for rule in feedback["spec"]["rules"]
        for m in rule.get("matches", [])
        if m.get("headers")
    }
    assert by_header == {str(v): f"{FULLNAME}-{v}" for v in Variant}


def test_the_series_variant_is_the_pods_label_under_an_engine():
    monitor = one(render(**{"serviceMonitor.enabled": "true"}), "ServiceMonitor")
    [endpoint] = monitor["spec"]["endpoints"]
    label = "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", VARIANT_POD_LABEL)
    assert {"sourceLabels": [label], "regex": "(.+)", "targetLabel": "variant"} in endpoint[
        "relabelings"
    ]
    assert {"regex": "exported_variant", "action": "labeldrop"} in endpoint["metricRelabelings"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"gatewayAPI.enabled": "false"}, "set gatewayAPI.enabled=true"),
        ({"canary.enabled": "true"}, "set canary.enabled=false"),
        ({"delivery.engine": "flagr"}, "delivery/engine"),
        ({"delivery.gate.alpha": "1.5"}, "delivery/gate/alpha"),
        ({"delivery.gate.window": "two hours"}, "delivery/gate/window"),
        ({"delivery.steps": "{10,100}"}, "delivery/steps/1"),
    ],
)
def test_values_an_engine_cannot_work_with_are_refused_by_name(values, message):
    with pytest.raises(chart.ChartError) as refused:
        render(**values)
    assert message in str(refused.value)


def test_the_notes_name_the_rollout_and_the_template_the_chart_renders():
    printed = printed_notes(ARGO_PROFILE)
    objects = render()
    assert f"Rollout {one(objects, 'Rollout')['metadata']['name']} " in printed
    assert f"AnalysisTemplate {one(objects, 'AnalysisTemplate')['metadata']['name']}." in printed
    assert "10 → 50 → 100 %" in printed
