"""values.schema.json refuses bad values, and the message names the key."""

from __future__ import annotations

import pytest
import yaml

from local_stack import chart

BAD_VALUES = {
    "wrong type for a switch": (
        {"model-exporter": {"canary": {"enabled": "yes"}}},
        "at '/canary/enabled': got string, want boolean",
    ),
    "quality window of zero": (
        {"model-exporter": {"quality": {"window": 0}}},
        "at '/quality/window': minimum: got 0, want 1",
    ),
    "empty user id": (
        {"model-exporter": {"userId": ""}},
        "at '/userId': minLength: got 0, want 1",
    ),
    "user id that is no label value": (
        {"model-exporter": {"userId": "user 07"}},
        "at '/userId': 'user 07' does not match pattern",
    ),
    "scrape interval that is no duration": (
        {"model-exporter": {"serviceMonitor": {"interval": "fast"}}},
        "at '/serviceMonitor/interval': 'fast' does not match pattern",
    ),
    "fault ratio above one": (
        {"model-exporter": {"stable": {"faultInjection": {"errorRatio": 1.5}}}},
        "at '/stable/faultInjection/errorRatio': maximum: got 1.5, want 1",
    ),
    "misspelt variant key": (
        {"model-exporter": {"canary": {"modelPth": "/opt/m.joblib"}}},
        "at '/canary': additional properties 'modelPth' not allowed",
    ),
    "service port out of range": (
        {"model-exporter": {"service": {"port": 70000}}},
        "at '/service/port': maximum: got 70,000, want 65,535",
    ),
    "canary weight above 100": (
        {"model-exporter": {"canary": {"weight": 101}}},
        "at '/canary/weight': maximum: got 101, want 100",
    ),
    "R² threshold above one": (
        {"rules": {"alerts": {"ModelR2Low": {"threshold": 2}}}},
        "at '/rules/alerts/ModelR2Low/threshold': maximum: got 2, want 1",
    ),
    "misspelt alert name": (
        {"rules": {"alerts": {"ModelR2low": {"enabled": False}}}},
        "at '/rules/alerts': additional properties 'ModelR2low' not allowed",
    ),
    "rules window that is no duration": (
        {"rules": {"window": "5 minutes"}},
        "at '/rules/window': '5 minutes' does not match pattern",
    ),
    "unknown severity": (
        {"rules": {"alerts": {"ModelErrorRateHigh": {"severity": "page"}}}},
        "at '/rules/alerts/ModelErrorRateHigh/severity': value must be one of",
    ),
    "alert for that is no duration": (
        {"rules": {"alerts": {"ModelLatencyHigh": {"for": 300}}}},
        "at '/rules/alerts/ModelLatencyHigh/for': got number, want string",
    ),
    "feedback dataset URL that is neither a path nor a URL": (
        {"model-exporter": {"feedbackDataset": {"url": "bucket/feedback"}}},
        "at '/feedbackDataset/url': 'bucket/feedback' does not match pattern",
    ),
    "feedback claim size that is no quantity": (
        {"model-exporter": {"feedbackDataset": {"persistence": {"size": "lots"}}}},
        "at '/feedbackDataset/persistence/size': 'lots' does not match pattern",
    ),
    "feedback claim access mode misspelt": (
        {"model-exporter": {"feedbackDataset": {"persistence": {"accessModes": ["RWO"]}}}},
        "at '/feedbackDataset/persistence/accessModes/0': value must be one of",
    ),
    "webhook URL without http": (
        {"alerting": {"webhook": {"url": "ftp://hooks.example"}}},
        "at '/alerting/webhook/url': 'ftp://hooks.example' does not match pattern",
    ),
    "retrain webhook enabled without its token Secret": (
        {"model-exporter": {"retrainWebhook": {"enabled": True}}},
        "at '/retrainWebhook/tokenSecret/name': minLength: got 0, want 1",
    ),
    "retrain webhook dispatching without a repository": (
        {
            "model-exporter": {
                "retrainWebhook": {
                    "enabled": True,
                    "dryRun": False,
                    "tokenSecret": {"name": "retrain-webhook-token"},
                    "githubTokenSecret": {"name": "github-token"},
                }
            }
        },
        "at '/retrainWebhook/githubRepo': minLength: got 0, want 1",
    ),
    "retrain cooldown that is no duration": (
        {"model-exporter": {"retrainWebhook": {"cooldown": "1 hour"}}},
        "at '/retrainWebhook/cooldown': '1 hour' does not match pattern",
    ),
    "retrain cooldown in a unit the webhook does not know": (
        {"model-exporter": {"retrainWebhook": {"cooldown": "1w"}}},
        "at '/retrainWebhook/cooldown': '1w' does not match pattern",
    ),
    "retrain thresholds of the webhook's own (the alerts' thresholds decide)": (
        {"model-exporter": {"retrainWebhook": {"thresholds": {"maxMae": 0.45}}}},
        "at '/retrainWebhook': additional properties 'thresholds' not allowed",
    ),
    "empty name of a stack Service": (
        {"stackServices": {"prometheus": ""}},
        "at '/stackServices/prometheus': minLength: got 0, want 1",
    ),
    "GitHub token given as a value instead of a Secret": (
        {"model-exporter": {"retrainWebhook": {"githubToken": "ghp_x"}}},
        "at '/retrainWebhook': additional properties 'githubToken' not allowed",
    ),
    "stack namespace that is no namespace": (
        {"model-exporter": {"monitoring": {"stackNamespace": "Monitoring"}}},
        "at '/monitoring/stackNamespace': 'Monitoring' does not match pattern",
    ),
    "stack switch that is not a boolean": (
        {"kube-prometheus-stack": {"enabled": "maybe"}},
        "at '/kube-prometheus-stack/enabled': got string, want boolean",
    ),
    "misspelt top-level key": (
        {"rule": {"enabled": False}},
        "additional properties 'rule' not allowed",
    ),
}


@pytest.mark.parametrize(("values", "message"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_values_are_refused_naming_the_key(umbrella, tmp_path, values, message):
    values_file = tmp_path / "bad.yaml"
    values_file.write_text(yaml.safe_dump({"kube-prometheus-stack": {"enabled": False}} | values))
    with pytest.raises(chart.ChartError) as error:
        chart.render(umbrella, release="r1", namespace="ns", values_files=[values_file])
    assert message in str(error.value)


def test_the_shipped_defaults_pass_the_schema(umbrella):
    objects = chart.render(
        umbrella,
        release="r1",
        namespace="ns",
        set_values={"kube-prometheus-stack.enabled": "false"},
    )
    assert objects
