"""The rendered AlertmanagerConfig becomes the alertmanager.yml the operator would make: child
routes kept in order with their matchers and `continue`, integrations that need a Secret left
out with a warning, and a tree that Alertmanager's own amtool accepts and routes as intended."""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from local_stack import alerting, chart, manifests
from local_stack.pods import free_port
from local_stack.processes import Supervisor, wait_until
from local_stack.stack import DEFAULT_VALUES
from local_stack.toolchain import REPO_ROOT, require
from modelmon.contract import ACTION_LABEL, RETRAIN_ACTION
from support import WebhookReceiver, eventually

E2E_VALUES = REPO_ROOT / "tests" / "e2e" / "values-e2e.yaml"
NAMESPACE, USER = "kubeflow-user01", "user01"
PREFIX = f"{NAMESPACE}/e2e-model-monitoring"
NORMAL, RETRAIN = f"{PREFIX}/e2e-model-monitoring", f"{PREFIX}/e2e-model-monitoring-retrain"
ASKS = {ACTION_LABEL: RETRAIN_ACTION}
WITH_RETRAIN = {
    "model-exporter.retrainWebhook.enabled": "true",
    "model-exporter.retrainWebhook.tokenSecret.name": "retrain-webhook-token",
}


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def umbrella_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return chart.prepare_umbrella(tmp_path_factory.mktemp("umbrella"))


def render(umbrella: Path, url: str, extra: dict[str, str]) -> list[dict[str, Any]]:
    """The e2e profile (local values, short group_wait, a plain webhook) with `extra`."""
    return chart.render(
        umbrella,
        release="e2e",
        namespace=NAMESPACE,
        values_files=[DEFAULT_VALUES, E2E_VALUES],
        set_values={"alerting.webhook.url": url, **extra},
    )


@pytest.fixture(scope="module")
def config(umbrella_copy: Path, receiver: WebhookReceiver) -> dict[str, Any]:
    return alerting.config_from(render(umbrella_copy, receiver.url, WITH_RETRAIN))


def amtool() -> Path:
    return require("amtool")  # installed with Alertmanager's package by `make setup`


def test_the_retrain_route_continues_to_a_catch_all_for_the_normal_receiver(config):
    [release_route] = config["route"]["routes"]
    assert release_route["receiver"] == NORMAL
    assert release_route["matchers"] == [f'namespace="{NAMESPACE}"', f'user_id="{USER}"']
    assert release_route["continue"] is True
    assert release_route["group_wait"] == "1s"
    assert release_route["routes"] == [
        {
            "receiver": RETRAIN,
            "matchers": [f'{ACTION_LABEL}="{RETRAIN_ACTION}"'],
            "continue": True,
        },
        {"receiver": NORMAL, "continue": False},
    ]


def test_a_webhook_whose_credentials_are_in_a_secret_is_left_out_with_a_warning(
    umbrella_copy, receiver, caplog
):
    objects = render(umbrella_copy, receiver.url, WITH_RETRAIN)
    with caplog.at_level(logging.WARNING, logger="local_stack"):
        config = alerting.config_from(objects)
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers[RETRAIN] == {"name": RETRAIN}, "kept by name, so its route stays valid"
    assert receivers[NORMAL]["webhook_configs"] == [{"url": receiver.url, "send_resolved": True}]
    [warning] = [r.getMessage() for r in caplog.records if RETRAIN in r.getMessage()]
    assert "e2e-model-exporter-retrain-webhook" in warning
    assert "httpConfig.authorization.credentials in a Secret" in warning
    assert "retrain-webhook-token" not in json.dumps(config)


@pytest.mark.parametrize(
    ("http_config", "kept"),
    [
        ({"followRedirects": True, "tlsConfig": {"insecureSkipVerify": True}}, True),
        ({"basicAuth": {"password": {"name": "s", "key": "p"}}}, False),
        ({"tlsConfig": {"ca": {"secret": {"name": "s", "key": "ca.crt"}}}}, False),
        ({"oauth2": {"clientSecret": {"name": "s", "key": "k"}}}, False),
    ],
    ids=["no Secret", "basic auth", "CA from a Secret", "OAuth2"],
)
def test_only_webhooks_that_refer_to_a_secret_are_left_out(http_config, kept):
    objects = [
        {
            "apiVersion": "monitoring.coreos.com/v1alpha1",
            "kind": "AlertmanagerConfig",
            "metadata": {"name": "team", "namespace": "ns"},
            "spec": {
                "receivers": [
                    {
                        "name": "hook",
                        "webhookConfigs": [{"url": "http://h/", "httpConfig": http_config}],
                    }
                ]
            },
        }
    ]
    [_, receiver] = alerting.config_from(objects)["receivers"]
    assert ("webhook_configs" in receiver) is kept


def test_without_the_retrain_webhook_the_release_route_has_no_children(umbrella_copy, receiver):
    config = alerting.config_from(render(umbrella_copy, receiver.url, {}))
    [release_route] = config["route"]["routes"]
    assert "routes" not in release_route
    assert [r["name"] for r in config["receivers"]] == ["null", NORMAL]


def test_child_routes_nest_inherit_their_receiver_and_default_to_stop():
    objects = [
        {
            "apiVersion": "monitoring.coreos.com/v1alpha1",
            "kind": "AlertmanagerConfig",
            "metadata": {"name": "team", "namespace": "ns"},
            "spec": {
                "route": {
                    "receiver": "a",
                    "routes": [
                        {
                            "matchers": [{"name": "severity", "value": "critical"}],
                            "routes": [
                                {
                                    "receiver": "b",
                                    "matchers": [
                                        {"name": "team", "matchType": "!~", "value": "x|y"}
                                    ],
                                    "continue": True,
                                }
                            ],
                        }
                    ],
                },
                "receivers": [{"name": "a"}, {"name": "b"}],
            },
        }
    ]
    [route] = alerting.config_from(objects)["route"]["routes"]
    assert route == {
        "receiver": "ns/team/a",
        "matchers": ['namespace="ns"'],
        "continue": True,
        "routes": [
            {
                "matchers": ['severity="critical"'],
                "continue": False,
                "routes": [
                    {"receiver": "ns/team/b", "matchers": ['team!~"x|y"'], "continue": True}
                ],
            }
        ],
    }


def test_amtool_accepts_the_config(config, tmp_path):
    path = tmp_path / "alertmanager.yml"
    assert alerting.write_config(config, path)
    result = subprocess.run(
        [str(amtool()), "check-config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"alertname": "ModelR2Low", **ASKS}, [RETRAIN, NORMAL]),
        ({"alertname": "ModelDriftDetected", **ASKS}, [RETRAIN, NORMAL]),
        ({"alertname": "MyOwnAlert", **ASKS}, [RETRAIN, NORMAL]),
        ({"alertname": "ModelErrorRateHigh"}, [NORMAL]),
        ({"alertname": "ModelR2Low", **ASKS, "namespace": "kubeflow-user02"}, ["null"]),
        ({"alertname": "ModelR2Low", **ASKS, "user_id": "user02"}, ["null"]),
    ],
    ids=[
        "quality",
        "drift",
        "an alert of your own that asks",
        "not a quality alert",
        "other namespace",
        "other user",
    ],
)
def test_amtool_routes_each_alert_to_the_expected_receivers(config, tmp_path, labels, receivers):
    path = tmp_path / "alertmanager.yml"
    assert alerting.write_config(config, path)
    labels = {"namespace": NAMESPACE, "user_id": USER, "variant": "stable", **labels}
    result = subprocess.run(
        [
            str(amtool()),
            "config",
            "routes",
            "test",
            f"--config.file={path}",
            *(f"{key}={value}" for key, value in labels.items()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split(",") == receivers


def test_a_running_alertmanager_still_delivers_quality_alerts_to_the_normal_receiver(
    config, receiver, tmp_path
):
    supervisor = Supervisor(tmp_path / "logs")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        process = alerting.start(supervisor, config, tmp_path, port)

        def ready() -> bool:
            assert process.alive(), process.log_tail()
            return alerting.ready(url)

        wait_until(ready, 30, describe="Alertmanager ready")
        posted = [
            {"labels": {"alertname": name, "namespace": NAMESPACE, "user_id": USER, **extra}}
            for name, extra in (("ModelR2Low", ASKS), ("ModelErrorRateHigh", {}))
        ]
        requests.post(f"{url}/api/v2/alerts", json=posted, timeout=5).raise_for_status()
        eventually(
            receiver.names,
            lambda names: {"ModelR2Low", "ModelErrorRateHigh"} <= names,
            30,
            "both alerts delivered to the normal webhook receiver",
            process.log_tail,
        )
    finally:
        supervisor.stop_all()


def test_a_given_secret_becomes_a_credentials_file_and_the_service_url_a_local_one(
    umbrella_copy, receiver, tmp_path
):
    objects = render(umbrella_copy, receiver.url, WITH_RETRAIN)
    [webhook_url] = [
        c["url"]
        for config in manifests.of_kind(objects, "AlertmanagerConfig")
        for r in config["spec"]["receivers"]
        for c in r.get("webhookConfigs", [])
        if "retrain" in c["url"]
    ]
    host_port = webhook_url.split("//")[1].split("/")[0]
    resolver = alerting.Resolver(
        secrets={NAMESPACE: {"retrain-webhook-token": {"token": "t" * 32}}},
        secrets_dir=tmp_path / "secrets",
        services={host_port: "127.0.0.1:40123"},
    )
    config = alerting.config_from(objects, resolver)
    [retrain] = [r for r in config["receivers"] if r["name"] == RETRAIN]
    [webhook] = retrain["webhook_configs"]
    assert webhook["url"] == "http://127.0.0.1:40123/alerts"
    assert webhook["send_resolved"] is False
    credentials = Path(webhook["http_config"]["authorization"]["credentials_file"])
    assert webhook["http_config"]["authorization"]["type"] == "Bearer"
    assert credentials.read_text() == "t" * 32
    assert credentials.stat().st_mode & 0o777 == 0o600
    assert "t" * 32 not in json.dumps(config)
