"""Labels and selectors line up, so nothing is silently ignored by Kubernetes or the stack."""

from __future__ import annotations

import json

import pytest

from local_stack import manifests
from manifest_checks import STACK_OFF, VALUES_DIR, render_profile

ATTACH = VALUES_DIR / "users" / "user07.yaml"
PLATFORM = VALUES_DIR / "prod.yaml"
LOCAL = VALUES_DIR / "local.yaml"


def by_kind(objects, kind):
    return manifests.of_kind(objects, kind)


EXPORTER_SERVICES = {
    "r1-model-exporter-stable",
    "r1-model-exporter-canary",
    "r1-model-exporter-router",
}


@pytest.mark.parametrize(
    ("values_file", "expected"),
    [
        (ATTACH, EXPORTER_SERVICES | {"r1-model-exporter-retrain-webhook"}),
        (PLATFORM, EXPORTER_SERVICES),
        (LOCAL, EXPORTER_SERVICES),
    ],
    ids=["user07.yaml", "prod.yaml", "local.yaml"],
)
def test_service_monitor_selects_every_exporter_service_by_a_port_it_has(
    umbrella, values_file, expected
):
    objects = render_profile(umbrella, [values_file], set_values=STACK_OFF)
    [monitor] = manifests.service_monitors(objects)
    services = manifests.services(objects)
    selected = [s for s in services if monitor.selector.matches(s.labels)]
    assert {s.name for s in selected} == expected
    for service in selected:
        for endpoint in monitor.endpoints:
            assert endpoint.port in {p.name for p in service.ports}, service.name
    workloads = manifests.workloads(objects)
    for service in selected:
        [backing] = [
            w for w in workloads if manifests.LabelSelector(service.selector).matches(w.pod_labels)
        ]
        target = service.ports[0].target_port
        assert target in backing.containers[0].ports, f"{service.name} targets {target}"


def test_deployment_selectors_match_their_own_pods_only(umbrella):
    objects = render_profile(umbrella, [LOCAL], set_values=STACK_OFF)
    deployments = by_kind(objects, "Deployment")
    for deployment in deployments:
        selector = manifests.LabelSelector(deployment["spec"]["selector"]["matchLabels"])
        matching = [
            d["metadata"]["name"]
            for d in deployments
            if selector.matches(d["spec"]["template"]["metadata"]["labels"])
        ]
        assert matching == [deployment["metadata"]["name"]]


@pytest.mark.parametrize(
    ("values_file", "release", "expected"),
    [
        (PLATFORM, "monitoring", "monitoring"),
        (ATTACH, "user07", "monitoring"),
        (LOCAL, "demo", "demo"),
    ],
    ids=["platform: its own release", "attach: the shared stack's release", "local"],
)
def test_monitors_and_rules_carry_the_release_label_the_stack_selects(
    umbrella, values_file, release, expected
):
    objects = render_profile(umbrella, [values_file], release=release, set_values=STACK_OFF)
    for kind in ("ServiceMonitor", "PrometheusRule"):
        [obj] = by_kind(objects, kind)
        assert obj["metadata"]["labels"]["release"] == expected, kind


def test_dashboards_carry_the_sidecar_label_and_folder(umbrella):
    objects = render_profile(umbrella, [ATTACH], set_values=STACK_OFF)
    config_maps = [c for c in by_kind(objects, "ConfigMap") if "dashboard" in c["metadata"]["name"]]
    assert config_maps
    for config_map in config_maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["annotations"]["grafana_folder"] == "Model monitoring"
        for text in config_map["data"].values():
            dashboard = json.loads(text)
            assert "__inputs" not in dashboard
            assert "${DS_" not in text


def user_variable(objects):
    [config_map] = [
        c for c in by_kind(objects, "ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]
    ]
    [text] = config_map["data"].values()
    dashboard = json.loads(text)
    [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "user_id"]
    return dashboard, variable


def test_a_users_dashboard_is_fixed_to_that_user(umbrella):
    """Every panel matches user_id=~"$user_id"; fixed and hidden, the variable leaves a user no
    way to pick another user's series in their own dashboard."""
    objects = render_profile(umbrella, [ATTACH], set_values=STACK_OFF)
    dashboard, variable = user_variable(objects)
    assert variable == {
        "name": "user_id",
        "label": "User",
        "type": "constant",
        "query": "user07",
        "hide": 2,
    }
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs
    assert all('user_id=~"$user_id"' in expr for expr in exprs)


def test_the_platforms_overview_lists_every_user(umbrella):
    objects = render_profile(
        umbrella, [PLATFORM], set_values={**STACK_OFF, "dashboards.allUsers": "true"}
    )
    _, variable = user_variable(objects)
    assert variable["type"] == "query"
    assert variable["query"]["query"] == "label_values(model_prediction_total, user_id)"


def _identities(objects):
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    files, uids = set(), set()
    for config_map in by_kind(objects, "ConfigMap"):
        if "grafana_dashboard" not in config_map["metadata"]["labels"]:
            continue
        for file_name, text in config_map["data"].items():
            files.add(file_name)
            uids.add(json.loads(text)["uid"])
    return names, files, uids


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("user07", "kubeflow-user07"), ("user08", "kubeflow-user08")),
        (("user07", "kubeflow-shared"), ("user08", "kubeflow-shared")),
    ],
    ids=["two namespaces", "one namespace"],
)
def test_two_users_never_share_a_name_a_dashboard_file_or_uid(umbrella, first, second):
    renders = [
        _identities(
            render_profile(
                umbrella,
                [ATTACH],
                release=release,
                namespace=namespace,
                set_values={**STACK_OFF, "model-exporter.userId": release},
            )
        )
        for release, namespace in (first, second)
    ]
    (names_a, files_a, uids_a), (names_b, files_b, uids_b) = renders
    assert files_a
    assert uids_a
    assert not files_a & files_b
    assert not uids_a & uids_b
    if first[1] == second[1]:
        assert not names_a & names_b
    assert all(len(uid) <= 40 for uid in uids_a | uids_b)


def test_rules_only_see_this_releases_series(umbrella):
    objects = render_profile(
        umbrella, [ATTACH], release="user07", namespace="kubeflow-user07", set_values=STACK_OFF
    )
    [rule] = by_kind(objects, "PrometheusRule")
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    series_exprs = [e for e in exprs if "up{" not in e]
    assert all('namespace="kubeflow-user07",user_id="user07"' in e for e in series_exprs)
    assert any(
        'service=~"user07-model-exporter-stable|user07-model-exporter-canary"' in e for e in exprs
    )


def test_under_flagger_the_rules_see_the_services_flagger_makes(umbrella):
    """Flagger names the stable Service <target>-primary (pkg/router/kubernetes_default.go):
    the target-down rule matches it, and its absence is an alert too."""
    objects = render_profile(
        umbrella,
        [ATTACH],
        release="user07",
        namespace="kubeflow-user07",
        set_values={
            **STACK_OFF,
            "model-exporter.delivery.engine": "flagger",
            "model-exporter.gatewayAPI.enabled": "true",
            "model-exporter.canary.enabled": "false",
        },
    )
    [rule] = by_kind(objects, "PrometheusRule")
    [down] = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"] if "up{" in r["expr"]]
    services = 'service=~"user07-model-exporter-primary|user07-model-exporter-canary"'
    assert services in down
    assert 'absent(up{namespace="kubeflow-user07",service="user07-model-exporter-primary"})' in down
