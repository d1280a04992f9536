"""The retrain webhook (model-exporter.retrainWebhook) and the route that sends it the quality
alerts: what the chart renders, and that it stays valid, locked down and free of secrets."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml

from local_stack import chart, manifests
from manifest_checks import (
    STACK_OFF,
    VALUES_DIR,
    custom_resource_schema,
    render_profile,
    validation_errors,
)
from modelmon.contract import ACTION_LABEL, RETRAIN_ACTION

ATTACH = VALUES_DIR / "users" / "user07.yaml"
NAME = "user07-model-exporter-retrain-webhook"
RECEIVER = "user07-model-monitoring"
RETRAIN_MATCHER = {"name": ACTION_LABEL, "matchType": "=", "value": RETRAIN_ACTION}
WEBHOOK_MOUNT = "/etc/modelmon/retrain-webhook"
FOR_REAL = {
    "model-exporter.retrainWebhook.dryRun": "false",
    "model-exporter.retrainWebhook.githubTokenSecret.name": "github-token",
    "model-exporter.retrainWebhook.githubTokenSecret.key": "pat",
}


def render(umbrella, values_files=(ATTACH,), **values: str) -> list[dict[str, Any]]:
    return render_profile(
        umbrella,
        list(values_files),
        release="user07",
        namespace="kubeflow-user07",
        set_values={**STACK_OFF, **values},
    )


def one(objects, kind: str, name: str = NAME) -> dict[str, Any]:
    [found] = [o for o in manifests.of_kind(objects, kind) if o["metadata"]["name"] == name]
    return found


def container_of(objects, deployment: str = NAME) -> dict[str, Any]:
    [first] = one(objects, "Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return first


def container(objects) -> dict[str, Any]:
    return container_of(objects)


def args(objects) -> dict[str, str | None]:
    """--flag=value (or a bare --flag) of the webhook container, as a dict."""
    parsed: dict[str, str | None] = {}
    for arg in container(objects)["args"]:
        flag, sep, value = arg.partition("=")
        parsed[flag] = value if sep else None
    return parsed


def alertmanager_config(objects) -> dict[str, Any]:
    [config] = manifests.of_kind(objects, "AlertmanagerConfig")
    return config


def test_disabled_by_default_and_then_the_route_tree_stays_flat(umbrella):
    defaults = render(umbrella, values_files=())
    assert not [o for o in defaults if "retrain" in o["metadata"]["name"]]
    objects = render(umbrella, **{"model-exporter.retrainWebhook.enabled": "false"})
    assert not [o for o in objects if "retrain" in o["metadata"]["name"]]
    spec = alertmanager_config(objects)["spec"]
    assert "routes" not in spec["route"]
    assert [r["name"] for r in spec["receivers"]] == [RECEIVER]


def test_the_deployment_runs_serve_webhook_with_the_values(umbrella):
    objects = render(umbrella)
    webhook = container(objects)
    assert webhook["command"] == ["modelmon-ops", "serve-webhook"]
    assert webhook["image"] == container_of(objects, "user07-model-exporter-stable")["image"]
    assert args(objects) == {
        "--port": "8080",
        "--token-file": f"{WEBHOOK_MOUNT}/token",
        "--cooldown": "1h",
        "--state-file": "/tmp/retrain-cooldown.json",
        "--github-repo": "model-monitoring/model-monitoring",
        "--github-api-url": "https://api.github.com",
        "--workflow": "retrain-model.yaml",
        "--ref": "main",
    }, "dry run: no --no-dry-run"
    assert "env" not in webhook, "a dry run needs no GitHub token"
    assert "annotations" not in one(objects, "Deployment")["metadata"]
    assert webhook["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    for probe in ("livenessProbe", "readinessProbe"):
        assert webhook[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert one(objects, "Deployment")["spec"]["replicas"] == 1


def test_values_reach_the_flags(umbrella, tmp_path):
    overrides = tmp_path / "webhook.yaml"
    overrides.write_text(
        yaml.safe_dump(
            {
                "model-exporter": {
                    "retrainWebhook": {
                        "cooldown": "1h30m",
                        "workflow": "retrain.yml",
                        "ref": "release",
                    }
                }
            }
        )
    )
    objects = render(umbrella, (ATTACH, overrides))
    flags = args(objects)
    assert (flags["--cooldown"], flags["--workflow"], flags["--ref"]) == (
        "1h30m",
        "retrain.yml",
        "release",
    )


def test_the_webhook_reads_no_prometheus_and_holds_no_threshold_of_its_own(umbrella):
    """It acts on the alerts it is sent: the thresholds are the rules' (rules.alerts)."""
    flags = args(render(umbrella))
    assert not [
        flag for flag in flags if "prometheus" in flag or flag.startswith(("--max", "--min"))
    ]


def test_dispatching_for_real_takes_the_github_token_from_its_secret(umbrella):
    objects = render(umbrella, **FOR_REAL)
    webhook = container(objects)
    assert "--no-dry-run" in args(objects)
    assert webhook["env"] == [
        {
            "name": "GITHUB_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "github-token", "key": "pat"}},
        }
    ]
    assert not manifests.of_kind(objects, "Secret"), "Secrets are created by hand, never rendered"
    annotations = one(objects, "Deployment")["metadata"]["annotations"]
    assert annotations["checkov.io/skip1"].startswith("CKV_K8S_35="), "the env var, explained"
    for obj in objects:
        assert validation_errors(obj) == []


def test_the_token_is_a_file_from_its_secret_and_tmp_is_the_only_writable_place(umbrella):
    objects = render(umbrella)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    webhook = container(objects)
    mounts = {m["mountPath"]: m for m in webhook["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    token_mount = mounts[WEBHOOK_MOUNT]
    assert token_mount["readOnly"] is True
    assert volumes[token_mount["name"]]["secret"] == {
        "secretName": "retrain-webhook-token",
        "items": [{"key": "token", "path": "token"}],
        "defaultMode": 0o440,
    }
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert args(objects)["--state-file"].startswith("/tmp/")
    assert args(objects)["--token-file"] == f"{WEBHOOK_MOUNT}/token"


def test_security_context_is_the_one_every_pod_of_the_chart_has(umbrella):
    objects = render(umbrella)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    stable = one(objects, "Deployment", "user07-model-exporter-stable")["spec"]["template"]["spec"]
    assert pod["securityContext"] == stable["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    context = container(objects)["securityContext"]
    assert context == stable["containers"][0]["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert container(objects)["resources"]["requests"]


def test_service_network_policy_and_budget_select_the_webhook_pod(umbrella):
    objects = render(umbrella)
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    [service] = [s for s in manifests.services(objects) if s.name == NAME]
    assert manifests.LabelSelector(service.selector).matches(pod_labels)
    assert [(p.name, p.port, p.target_port) for p in service.ports] == [("http", 8080, "http")]
    assert one(objects, "Service")["spec"]["type"] == "ClusterIP"
    others = [w.pod_labels for w in manifests.workloads(objects) if w.name != NAME]
    for kind in ("NetworkPolicy", "PodDisruptionBudget"):
        obj = one(objects, kind)
        selector = obj["spec"]["podSelector" if kind == "NetworkPolicy" else "selector"]
        assert manifests.LabelSelector(selector["matchLabels"]).matches(pod_labels), kind
        assert not any(
            manifests.LabelSelector(selector["matchLabels"]).matches(labels) for labels in others
        ), f"{kind} must select the webhook only"


def test_only_the_stacks_namespace_may_reach_the_webhook(umbrella):
    policy = one(render(umbrella), "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ], "Alertmanager and Prometheus, not the pods of this namespace"


def test_alertmanager_in_another_namespace_or_by_selector(umbrella):
    policy = one(
        render(umbrella, **{"model-exporter.monitoring.stackNamespace": "shared-alerting"}),
        "NetworkPolicy",
    )
    assert [
        peer["namespaceSelector"]["matchLabels"] for peer in policy["spec"]["ingress"][0]["from"]
    ] == [
        {"kubernetes.io/metadata.name": "shared-alerting"},
        {"kubernetes.io/metadata.name": "monitoring"},
    ]
    selector = "model-exporter.retrainWebhook.networkPolicy.alertmanagerNamespaceSelector"
    policy = one(render(umbrella, **{f"{selector}.matchLabels.team": "sre"}), "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["from"][0] == {
        "namespaceSelector": {"matchLabels": {"team": "sre"}}
    }


def test_the_service_monitor_scrapes_the_webhook(umbrella):
    objects = render(umbrella)
    [monitor] = manifests.service_monitors(objects)
    [service] = [s for s in manifests.services(objects) if s.name == NAME]
    assert monitor.selector.matches(service.labels)
    assert {e.port for e in monitor.endpoints} <= {p.name for p in service.ports}
    assert {e.path for e in monitor.endpoints} == {"/metrics"}


def test_quality_alerts_go_to_the_webhook_and_on_to_the_normal_receiver(umbrella):
    config = alertmanager_config(render(umbrella))
    assert validation_errors(config) == []
    route = config["spec"]["route"]
    assert route["receiver"] == RECEIVER
    assert route["routes"] == [
        {
            "receiver": f"{RECEIVER}-retrain",
            "matchers": [RETRAIN_MATCHER],
            "continue": True,
        },
        {"receiver": RECEIVER},
    ]
    # `routes` items are free-form in the CRD: hold each child to the route schema itself.
    route_schema = custom_resource_schema("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig")
    child_schema = route_schema["properties"]["spec"]["properties"]["route"]
    for child in route["routes"]:
        jsonschema.Draft7Validator(child_schema).validate(child)
    names = {r["name"] for r in config["spec"]["receivers"]}
    assert {c["receiver"] for c in route["routes"]} <= names


def test_the_retrain_receiver_posts_to_the_webhook_service_with_the_bearer_token(umbrella):
    objects = render(umbrella)
    receivers = {r["name"]: r for r in alertmanager_config(objects)["spec"]["receivers"]}
    [webhook] = receivers[f"{RECEIVER}-retrain"]["webhookConfigs"]
    service = one(objects, "Service")
    port = service["spec"]["ports"][0]["port"]
    assert webhook == {
        "url": f"http://{NAME}.kubeflow-user07.svc:{port}/alerts",
        "sendResolved": False,
        "httpConfig": {
            "authorization": {
                "type": "Bearer",
                "credentials": {"name": "retrain-webhook-token", "key": "token"},
            }
        },
    }
    assert "slackConfigs" in receivers[RECEIVER], "the user's receiver is unchanged"


def test_the_webhook_alone_is_enough_for_an_alertmanager_config(umbrella):
    objects = render(umbrella, **{"alerting.slack.enabled": "false"})
    config = alertmanager_config(objects)
    assert validation_errors(config) == []
    receivers = {r["name"]: r for r in config["spec"]["receivers"]}
    assert receivers[RECEIVER] == {"name": RECEIVER}, "a receiver that notifies no one"
    assert "webhookConfigs" in receivers[f"{RECEIVER}-retrain"]


def test_no_receiver_at_all_still_fails(umbrella):
    with pytest.raises(chart.ChartError) as error:
        render(
            umbrella,
            **{
                "alerting.slack.enabled": "false",
                "model-exporter.retrainWebhook.enabled": "false",
            },
        )
    assert "needs a receiver: enable alerting.slack, alerting.webhook or model-exporter" in str(
        error.value
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"model-exporter.retrainWebhook.tokenSecret.name": ""},
            "retrainWebhook.tokenSecret.name: name the Secret whose key holds the bearer token",
        ),
        (
            {"model-exporter.retrainWebhook.dryRun": "false"},
            "retrainWebhook.githubTokenSecret.name: dryRun is false",
        ),
    ],
    ids=["no token Secret", "for real without a GitHub token"],
)
def test_templates_fail_clearly_even_without_the_schema(umbrella, values, message):
    """helm --skip-schema-validation: the templates still refuse, with a message."""
    arguments = ["template", "user07", str(umbrella), "-f", str(ATTACH), "--skip-schema-validation"]
    for key, value in {**STACK_OFF, **values}.items():
        arguments += ["--set", f"{key}={value}"]
    with pytest.raises(chart.ChartError) as error:
        chart.helm(*arguments)
    assert message in str(error.value)


def test_the_routed_alerts_are_the_quality_alerts_the_rules_raise(umbrella):
    [rule] = manifests.of_kind(render(umbrella), "PrometheusRule")
    routed = {
        r["alert"]
        for g in rule["spec"]["groups"]
        for r in g["rules"]
        if r.get("labels", {}).get(RETRAIN_MATCHER["name"]) == RETRAIN_MATCHER["value"]
    }
    assert routed == {
        "ModelPerformanceDegraded",
        "ModelR2Low",
        "ModelAccuracyDropped",
        "ModelDriftDetected",
    }


def test_the_usual_webhook_receiver_can_send_a_bearer_token_from_a_secret(umbrella):
    objects = render(
        umbrella,
        **{
            "alerting.webhook.enabled": "true",
            "alerting.webhook.url": "http://receiver.example:8080/alerts",
            "alerting.webhook.authorizationSecret.name": "receiver-token",
        },
    )
    config = alertmanager_config(objects)
    assert validation_errors(config) == []
    [usual] = [r for r in config["spec"]["receivers"] if r["name"] == RECEIVER]
    [webhook_config] = usual["webhookConfigs"]
    assert webhook_config["httpConfig"]["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "receiver-token", "key": "token"},
    }
    without = alertmanager_config(
        render(
            umbrella,
            **{
                "alerting.webhook.enabled": "true",
                "alerting.webhook.url": "http://receiver.example:8080/alerts",
            },
        )
    )
    [plain] = [r for r in without["spec"]["receivers"] if r["name"] == RECEIVER]
    assert "httpConfig" not in plain["webhookConfigs"][0]
