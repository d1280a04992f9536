"""Each alert the chart renders with action=retrain, sent alone to the retrain webhook as
Alertmanager sends it, asks GitHub for exactly one retrain; the others ask for none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from manifest_checks import VALUES_DIR, render_profile
from modelmon.contract import ACTION_LABEL, RETRAIN_ACTION, THRESHOLD_ANNOTATION
from modelmon.ops.cooldown import Cooldown
from modelmon.ops.github import GitHubWorkflow
from modelmon.ops.webhook import WebhookSettings, create_webhook_app
from opstool import GitHubRecorder

TOKEN = "w" * 32
NAMESPACE, USER = "kubeflow-user07", "user07"


def rendered_alert_rules(umbrella: Path) -> list[dict[str, Any]]:
    objects = render_profile(umbrella, [VALUES_DIR / "users" / "user07.yaml"], release=USER)
    [rule] = [o for o in objects if o["kind"] == "PrometheusRule"]
    return [r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r]


def as_delivered(rule: dict[str, Any], value: str) -> dict[str, Any]:
    """The alert as Alertmanager posts it: the rule's labels plus the series' own, and the
    annotations with {{ $value }} expanded."""
    labels = {
        "alertname": rule["alert"],
        "namespace": NAMESPACE,
        "variant": "stable",
        "model_version": "1.0.0",
        **rule["labels"],
    }
    annotations = {
        key: text.replace("{{ $value }}", value) for key, text in rule["annotations"].items()
    }
    return {"status": "firing", "labels": labels, "annotations": annotations}


@pytest.fixture(scope="module")
def alert_rules(umbrella: Path) -> list[dict[str, Any]]:
    return rendered_alert_rules(umbrella)


def webhook(github: GitHubRecorder, tmp_path: Path) -> TestClient:
    settings = WebhookSettings(
        token=TOKEN,
        cooldown=Cooldown(tmp_path / "cooldown.json", 3600),
        workflow=GitHubWorkflow("acme/models", "ghp_token", api_url=github.url),
        dry_run=False,
    )
    return TestClient(create_webhook_app(settings, CollectorRegistry()))


def post(client: TestClient, *alerts: dict[str, Any]) -> Any:
    answer = client.post(
        "/alerts", json={"alerts": list(alerts)}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_quality_alerts_are_the_ones_that_ask(alert_rules) -> None:
    asking = {r["alert"] for r in alert_rules if r["labels"].get(ACTION_LABEL) == RETRAIN_ACTION}
    assert asking == {
        "ModelPerformanceDegraded",
        "ModelR2Low",
        "ModelAccuracyDropped",
        "ModelDriftDetected",
    }


@pytest.mark.parametrize(
    "name", ["ModelPerformanceDegraded", "ModelR2Low", "ModelAccuracyDropped", "ModelDriftDetected"]
)
def test_each_quality_alert_alone_asks_for_one_retrain(
    alert_rules, name: str, github: GitHubRecorder, tmp_path: Path
) -> None:
    [rule] = [r for r in alert_rules if r["alert"] == name]
    client = webhook(github, tmp_path)
    decisions = post(client, as_delivered(rule, "0.3125"))["decisions"]
    assert [d["action"] for d in decisions] == ["triggered"]
    [request] = github.requests
    inputs = request.body["inputs"]
    assert inputs["user_id"] == USER
    threshold = rule["annotations"][THRESHOLD_ANNOTATION]
    assert "(0.3125) " in inputs["reason"]
    assert inputs["reason"].endswith(f" {threshold} [{name}, stable]")
    expected_drift = "0.3125" if name == "ModelDriftDetected" else ""
    assert inputs["drift_score"] == expected_drift
    # Alertmanager repeats a firing alert; the cooldown keeps it to one request
    assert post(client, as_delivered(rule, "0.3125"))["decisions"][0]["action"] == "cooldown"
    assert len(github.requests) == 1


def test_the_other_alerts_ask_for_nothing(alert_rules, github, tmp_path: Path) -> None:
    others = [r for r in alert_rules if r["labels"].get(ACTION_LABEL) != RETRAIN_ACTION]
    assert {r["alert"] for r in others} >= {"ModelLatencyHigh", "ModelErrorRateHigh"}
    client = webhook(github, tmp_path)
    assert post(client, *(as_delivered(r, "1") for r in others)) == {"decisions": []}
    assert github.requests == []
