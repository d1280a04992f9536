"""The settings platform teams expect of a chart, each rendered, validated and refused when wrong:
pod labels, annotations and priority, topology spread, extra environment, a startup probe,
workload-identity annotations, relabelings, a PodMonitor, Ingress TLS, and network policies that
admit the ingress controller or gateway and, optionally, restrict egress."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from local_stack import chart
from local_stack.manifests import ManifestError, refuse_not_modelled_kinds
from manifest_checks import validation_errors
from modelmon.contract import VARIANT_HEADER, Variant

SUBCHART = chart.UMBRELLA.parent / "model-exporter"
RELEASE = "r1"
FULLNAME = f"{RELEASE}-model-exporter"
EVERY_COMPONENT = {
    "canary": {"enabled": True},
    "retrainWebhook": {"enabled": True, "tokenSecret": {"name": "retrain-webhook-token"}},
}


def render(tmp_path: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    return chart.render(
        SUBCHART, release=RELEASE, namespace="kubeflow-user07", values_files=[values_file]
    )


def render_error(tmp_path: Path, values: dict[str, Any]) -> str:
    with pytest.raises(chart.ChartError) as failure:
        render(tmp_path, values)
    return str(failure.value)


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def assert_valid(objects: list[dict[str, Any]]) -> None:
    assert [e for o in objects for e in validation_errors(o)] == []


def test_pod_settings_reach_every_deployment(tmp_path) -> None:
    spread = {
        "maxSkew": 1,
        "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "ScheduleAnyway",
    }
    given_selector = {"matchLabels": {"team": "ml"}}
    objects = render(
        tmp_path,
        {
            **EVERY_COMPONENT,
            "podLabels": {"team": "ml", "app.kubernetes.io/component": "overridden"},
            "podAnnotations": {"example.com/owner": "ml-platform"},
            "priorityClassName": "model-serving",
            "topologySpreadConstraints": [
                spread,
                {
                    **spread,
                    "topologyKey": "kubernetes.io/hostname",
                    "labelSelector": given_selector,
                },
            ],
            "extraEnv": [{"name": "OTEL_SERVICE_NAME", "value": "model-exporter"}],
        },
    )
    deployments = of_kind(objects, "Deployment")
    assert sorted(deployments) == sorted(
        [
            f"{FULLNAME}-stable",
            f"{FULLNAME}-canary",
            f"{FULLNAME}-router",
            f"{FULLNAME}-retrain-webhook",
        ]
    )
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert pod["metadata"]["labels"] == {**selector, "team": "ml"}, name
        assert pod["metadata"]["annotations"] == {"example.com/owner": "ml-platform"}, name
        assert pod["spec"]["priorityClassName"] == "model-serving", name
        zone, host = pod["spec"]["topologySpreadConstraints"]
        assert zone == {**spread, "labelSelector": {"matchLabels": selector}}, name
        assert host["labelSelector"] == given_selector, name
        [container] = pod["spec"]["containers"]
        assert {"name": "OTEL_SERVICE_NAME", "value": "model-exporter"} in container["env"], name
    assert_valid(objects)


def test_the_webhook_keeps_its_github_token_beside_extra_env(tmp_path) -> None:
    objects = render(
        tmp_path,
        {
            "retrainWebhook": {
                "enabled": True,
                "tokenSecret": {"name": "retrain-webhook-token"},
                "githubTokenSecret": {"name": "github-token"},
            },
            "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy.internal:3128"}],
        },
    )
    [container] = of_kind(objects, "Deployment")[f"{FULLNAME}-retrain-webhook"]["spec"]["template"][
        "spec"
    ]["containers"]
    assert [variable["name"] for variable in container["env"]] == ["GITHUB_TOKEN", "HTTPS_PROXY"]
    assert container["env"][0]["valueFrom"] == {
        "secretKeyRef": {"name": "github-token", "key": "token"}
    }


def test_serving_pods_wait_for_a_startup_probe_and_none_can_be_chosen(tmp_path) -> None:
    objects = render(tmp_path, EVERY_COMPONENT)
    probes = {
        name: d["spec"]["template"]["spec"]["containers"][0].get("startupProbe")
        for name, d in of_kind(objects, "Deployment").items()
    }
    defaults = yaml.safe_load((SUBCHART / "values.yaml").read_text())["startupProbe"]
    assert probes == {
        f"{FULLNAME}-stable": defaults,
        f"{FULLNAME}-canary": defaults,
        f"{FULLNAME}-router": defaults,
        f"{FULLNAME}-retrain-webhook": None,
    }
    # Longer than the liveness probe would allow: that is what it is for.
    assert defaults["periodSeconds"] * defaults["failureThreshold"] > 30
    without = render(tmp_path, {**EVERY_COMPONENT, "startupProbe": None})
    assert not any(
        "startupProbe" in d["spec"]["template"]["spec"]["containers"][0]
        for d in of_kind(without, "Deployment").values()
    )


def test_the_service_account_carries_workload_identity_annotations(tmp_path) -> None:
    role = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/model-exporter"}
    objects = render(tmp_path, {"serviceAccount": {"annotations": role}})
    [account] = of_kind(objects, "ServiceAccount").values()
    assert account["metadata"]["annotations"] == role


RELABELINGS = [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}]
DROP_GO = [{"sourceLabels": ["__name__"], "regex": "go_.*", "action": "drop"}]


def test_service_monitor_relabelings_pass_through(tmp_path) -> None:
    objects = render(
        tmp_path, {"serviceMonitor": {"relabelings": RELABELINGS, "metricRelabelings": DROP_GO}}
    )
    [monitor] = of_kind(objects, "ServiceMonitor").values()
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["relabelings"] == RELABELINGS
    assert endpoint["metricRelabelings"] == DROP_GO
    assert_valid(objects)


def relabel(config: dict[str, Any], labels: dict[str, str]) -> dict[str, str]:
    """One `replace` relabeling, as Prometheus applies it (anchored regex, ${n} groups)."""
    value = config.get("separator", ";").join(labels.get(s, "") for s in config["sourceLabels"])
    match = re.fullmatch(config.get("regex", "(.*)"), value)
    if not match:
        return labels
    replacement = re.sub(
        r"\$\{(\d+)\}", lambda g: match.group(int(g.group(1))), config["replacement"]
    )
    return {**labels, config["targetLabel"]: replacement}


def meta_labels(pod_labels: dict[str, str]) -> dict[str, str]:
    return {
        "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", k): v
        for k, v in pod_labels.items()
    }


def test_a_pod_monitor_gives_each_target_the_service_label_a_service_monitor_would(
    tmp_path,
) -> None:
    objects = render(
        tmp_path,
        {
            **EVERY_COMPONENT,
            "serviceMonitor": {"enabled": False},
            "podMonitor": {
                "enabled": True,
                "relabelings": RELABELINGS,
                "metricRelabelings": DROP_GO,
            },
        },
    )
    assert of_kind(objects, "ServiceMonitor") == {}
    [monitor] = of_kind(objects, "PodMonitor").values()
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["relabelings"][-1:] == RELABELINGS
    assert endpoint["metricRelabelings"] == DROP_GO
    services = of_kind(objects, "Service")
    selected = monitor["spec"]["selector"]
    for name, deployment in of_kind(objects, "Deployment").items():
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert all(pod_labels[k] == v for k, v in selected["matchLabels"].items()), name
        labels = meta_labels(pod_labels)
        for config in endpoint["relabelings"][:2]:
            labels = relabel(config, labels)
        behind = [
            s
            for s, svc in services.items()
            if svc["spec"]["selector"].items() <= pod_labels.items()
        ]
        assert [labels.get("service")] == behind, name
    assert_valid(objects)


def test_a_service_monitor_and_a_pod_monitor_together_are_refused(tmp_path) -> None:
    message = render_error(tmp_path, {"podMonitor": {"enabled": True}})
    assert "enable one of the two" in message


def test_the_local_stack_refuses_kinds_whose_work_it_would_leave_undone(tmp_path) -> None:
    objects = render(
        tmp_path, {"serviceMonitor": {"enabled": False}, "podMonitor": {"enabled": True}}
    )
    refuse_not_modelled_kinds(objects)  # PodMonitors it scrapes (tests/harness/test_pod_monitor.py)
    probe = {"apiVersion": "monitoring.coreos.com/v1", "kind": "Probe", "metadata": {"name": "p"}}
    with pytest.raises(ManifestError, match="Probe p is not modelled"):
        refuse_not_modelled_kinds([*objects, probe])
    for profile, kinds in (
        ("argo-rollouts", "Rollout|AnalysisTemplate"),
        ("flagger", "Canary|MetricTemplate"),
    ):
        engine = chart.render(
            chart.EXPORTER_CHART,
            release="r1",
            namespace="ns",
            values_files=[chart.EXPORTER_CHART / "ci" / f"{profile}-values.yaml"],
        )
        with pytest.raises(ManifestError, match=f"^({kinds}) r1-model-exporter(-gate)? is not"):
            refuse_not_modelled_kinds(engine)


def exporter_policy_peers(objects: list[dict[str, Any]]) -> list[str]:
    policy = of_kind(objects, "NetworkPolicy")[FULLNAME]
    [rule] = policy["spec"]["ingress"]
    return [
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for peer in rule["from"]
        if "namespaceSelector" in peer
    ]


def test_the_exporters_admit_the_ingress_controller_or_gateway_only_when_they_route(
    tmp_path,
) -> None:
    assert exporter_policy_peers(render(tmp_path, {"canary": {"enabled": True}})) == ["monitoring"]
    nginx = render(
        tmp_path,
        {
            "canary": {"enabled": True},
            "ingressNginx": {"enabled": True, "controllerNamespace": "ingress"},
        },
    )
    assert exporter_policy_peers(nginx) == ["monitoring", "ingress"]
    gateway = {
        "enabled": True,
        "parentRefs": [
            {"name": "a", "namespace": "gw"},
            {"name": "b", "namespace": "gw"},
            {"name": "c"},
        ],
    }
    routed = render(tmp_path, {"canary": {"enabled": True}, "gatewayAPI": gateway})
    assert exporter_policy_peers(routed) == ["monitoring", "gw", "kubeflow-user07"]
    envoy = render(
        tmp_path,
        {
            "canary": {"enabled": True},
            "gatewayAPI": {**gateway, "dataPlaneNamespaces": ["envoy-gateway-system"]},
        },
    )
    assert exporter_policy_peers(envoy) == ["monitoring", "envoy-gateway-system"]
    assert_valid(envoy)


def test_the_egress_policy_allows_dns_the_release_and_what_is_added_only(tmp_path) -> None:
    assert f"{FULLNAME}-egress" not in of_kind(render(tmp_path, EVERY_COMPONENT), "NetworkPolicy")
    github = {
        "to": [{"ipBlock": {"cidr": "140.82.112.0/20"}}],
        "ports": [{"port": 443, "protocol": "TCP"}],
    }
    objects = render(
        tmp_path,
        {**EVERY_COMPONENT, "networkPolicy": {"egress": {"enabled": True, "extraTo": [github]}}},
    )
    policy = of_kind(objects, "NetworkPolicy")[f"{FULLNAME}-egress"]
    assert policy["spec"]["policyTypes"] == ["Egress"]
    dns, own, extra = policy["spec"]["egress"]
    assert dns["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kube-system"
    }
    assert {p["port"] for p in dns["ports"]} == {53}
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert own["to"] == [{"podSelector": {"matchLabels": selector}}]
    assert extra == github
    # Every pod of the release is under it.
    for name, deployment in of_kind(objects, "Deployment").items():
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items(), (
            name
        )
    assert_valid(objects)


def test_ingress_tls_is_on_both_ingresses(tmp_path) -> None:
    tls = [{"secretName": "models-tls", "hosts": ["models.example.com"]}]
    objects = render(
        tmp_path, {"canary": {"enabled": True}, "ingressNginx": {"enabled": True, "tls": tls}}
    )
    ingresses = of_kind(objects, "Ingress")
    assert {name: i["spec"]["tls"] for name, i in ingresses.items()} == {
        f"{FULLNAME}-stable": tls,
        f"{FULLNAME}-canary": tls,
    }
    assert_valid(objects)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"topologySpreadConstraints": [{"maxSkew": 1}]}, "topologyKey"),
        (
            {
                "topologySpreadConstraints": [
                    {"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}
                ]
            },
            "maxSkew",
        ),
        ({"extraEnv": [{"name": "GITHUB_TOKEN", "value": "ghp_literal"}]}, "extraEnv"),
        ({"podLabels": {"team": 7}}, "podLabels"),
        ({"gatewayAPI": {"dataPlaneNamespaces": ["Not_A_Namespace"]}}, "dataPlaneNamespaces"),
        ({"ingressNginx": {"tls": [{"hosts": ["a"]}]}}, "secretName"),
        ({"serviceMonitor": {"relabelings": [{"action": "explode"}]}}, "relabelings"),
        ({"podMonitor": {"interval": "soon"}}, "interval"),
    ],
)
def test_bad_platform_settings_are_refused_naming_the_key(tmp_path, values, message) -> None:
    assert message in render_error(tmp_path, values)


# --- feedback follows the prediction in every split mode ---------------------------------------


def route_backend(route: dict[str, Any], path: str, headers: dict[str, str]) -> str:
    """The backend an HTTPRoute sends a request to, by the precedence the Gateway API requires
    of every implementation (HTTPRouteRule.matches, in ../shared/schemas: an Exact path match
    first, then the longest prefix, then the most header matches, then rule order)."""
    candidates = []
    for order, rule in enumerate(route["spec"]["rules"]):
        for match in rule.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}]:
            wanted = match.get("path", {"type": "PathPrefix", "value": "/"})
            exact = wanted["type"] == "Exact"
            if (path != wanted["value"]) if exact else not path.startswith(wanted["value"]):
                continue
            needed = match.get("headers") or []
            if any(headers.get(h["name"]) != h["value"] for h in needed):
                continue
            candidates.append(((not exact, -len(wanted["value"]), -len(needed), order), rule))
    [*_, (_, rule)] = sorted(candidates, key=lambda c: c[0], reverse=True)
    backends = rule["backendRefs"]
    return backends[0]["name"] if len(backends) == 1 else "weighted"


def test_precedence_rules_match_the_gateway_api_text() -> None:
    schema = (
        Path(__file__).parents[2].parent
        / "shared/schemas/gateway.networking.k8s.io/httproute_v1.json"
    ).read_text()
    for rule in (
        '\\"Exact\\" path match',
        "Largest number of header matches",
        "FIRST matching rule",
    ):
        assert rule in schema


def test_gateway_feedback_goes_to_the_variant_its_header_names(tmp_path) -> None:
    objects = render(
        tmp_path, {"canary": {"enabled": True, "weight": 50}, "gatewayAPI": {"enabled": True}}
    )
    [route] = of_kind(objects, "HTTPRoute").values()
    assert route_backend(route, "/predict", {}) == "weighted"
    assert route_backend(route, "/predict", {VARIANT_HEADER: "canary"}) == "weighted"
    for variant in Variant:
        assert (
            route_backend(route, "/feedback", {VARIANT_HEADER: variant}) == f"{FULLNAME}-{variant}"
        )
    assert route_backend(route, "/feedback", {}) == f"{FULLNAME}-router"
    assert route_backend(route, "/feedback", {VARIANT_HEADER: "blue"}) == f"{FULLNAME}-router"
    assert_valid(objects)


def test_nginx_feedback_goes_through_the_router_not_the_weight(tmp_path) -> None:
    objects = render(
        tmp_path,
        {
            "canary": {"enabled": True, "weight": 30},
            "ingressNginx": {"enabled": True, "path": "/models/"},
        },
    )
    ingresses = of_kind(objects, "Ingress")
    stable_paths = {
        p["path"]: (p["pathType"], p["backend"]["service"]["name"])
        for p in ingresses[f"{FULLNAME}-stable"]["spec"]["rules"][0]["http"]["paths"]
    }
    assert stable_paths == {
        "/models/": ("Prefix", f"{FULLNAME}-stable"),
        "/models/feedback": ("Exact", f"{FULLNAME}-router"),
    }
    # The canary Ingress shadows the prediction path only: nginx merges a canary into the
    # location of the same host and path, so /feedback has no canary to fall through to.
    canary_paths = [
        p["path"] for p in ingresses[f"{FULLNAME}-canary"]["spec"]["rules"][0]["http"]["paths"]
    ]
    assert canary_paths == ["/models/"]
    assert_valid(objects)
