"""The load mix, durations and the webhook's answers to Alertmanager."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from modelmon.ops.cooldown import Cooldown
from modelmon.ops.durations import seconds
from modelmon.ops.errors import OpsError
from modelmon.ops.github import GitHubWorkflow
from modelmon.ops.load import Mix
from modelmon.ops.webhook import WebhookSettings, alerts_of, create_webhook_app

TOKEN = "x" * 32


def test_the_mix_keeps_its_ratio_in_every_cycle_and_spreads_the_kinds() -> None:
    first = list(itertools.islice(Mix(1, 10, 2).cycle(), 13))
    assert Counter(first) == {"health": 1, "predict": 10, "bad": 2}
    bad_positions = [i for i, kind in enumerate(first) if kind == "bad"]
    assert bad_positions[1] - bad_positions[0] >= 5  # spread over the cycle, not in a block
    assert Counter(itertools.islice(Mix(1, 10, 2).cycle(), 130)) == {
        "health": 10,
        "predict": 100,
        "bad": 20,
    }


@pytest.mark.parametrize("text", ["1:2", "a:b:c", "1:10:2:3", "-1:2:3", "0:0:0"])
def test_a_bad_mix_is_refused(text: str) -> None:
    with pytest.raises(OpsError, match="--mix"):
        Mix.parse(text)


@pytest.mark.parametrize(
    ("text", "value"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172800)]
)
def test_durations(text: str, value: float) -> None:
    assert seconds(text) == value


@pytest.mark.parametrize("text", ["", "5", "5x", "0s", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(OpsError, match="duration"):
        seconds(text)


def settings(tmp_path: Path, workflow: GitHubWorkflow | None = None) -> WebhookSettings:
    """A webhook that dry-runs, or dispatches to `workflow`."""
    return WebhookSettings(
        token=TOKEN,
        cooldown=Cooldown(tmp_path / "cooldown.json", 60),
        workflow=workflow,
        dry_run=workflow is None,
    )


def alert(name: str, status: str = "firing", **labels: str) -> dict[str, object]:
    return {
        "status": status,
        "labels": {"alertname": name, **labels},
        "startsAt": "2026-11-23T13:20:01.123456789Z",
    }


def test_a_body_that_is_not_an_alertmanager_payload_is_refused() -> None:
    with pytest.raises(ValueError, match="not an Alertmanager webhook payload"):
        alerts_of({"status": "firing"})
    assert alerts_of({"alerts": []}) == []


def test_the_webhook_refuses_missing_and_wrong_tokens_and_counts_them(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    client = TestClient(create_webhook_app(settings(tmp_path), registry))
    assert client.post("/alerts", json={"alerts": []}).status_code == 401
    for header in ("Bearer wrong", "Basic " + TOKEN, "Bearer " + TOKEN[:-1]):
        answer = client.post("/alerts", json={"alerts": []}, headers={"Authorization": header})
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    ok = client.post("/alerts", json={"alerts": []}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert ok.json() == {"decisions": []}
    bad = client.post("/alerts", json=[1], headers={"Authorization": f"Bearer {TOKEN}"})
    assert bad.status_code == 400

    def count(name: str, **labels: str) -> float:
        value = registry.get_sample_value(name, labels)
        assert value is not None, name
        return value

    assert count("modelmon_ops_webhook_rejected_total", reason="missing_token") == 2  # Basic too
    assert count("modelmon_ops_webhook_rejected_total", reason="bad_token") == 2
    assert count("modelmon_ops_webhook_notifications_total") == 2


def test_when_github_cannot_be_reached_the_webhook_asks_alertmanager_to_retry(
    tmp_path: Path,
) -> None:
    unreachable = GitHubWorkflow("acme/models", "token", api_url="http://127.0.0.1:9")
    client = TestClient(create_webhook_app(settings(tmp_path, unreachable), CollectorRegistry()))
    answer = client.post(
        "/alerts",
        json={"alerts": [alert("ModelR2Low", user_id="user07", action="retrain")]},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 503
    assert "cannot reach the GitHub API" in answer.json()["error"]
    assert Cooldown(tmp_path / "cooldown.json", 60).remaining("user07") == 0


def test_every_delivered_alert_is_logged_as_one_json_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = TestClient(create_webhook_app(settings(tmp_path), CollectorRegistry()))
    sent = alert("ModelLatencyHigh", user_id="user07", variant="canary")
    with caplog.at_level("INFO", logger="modelmon.ops.webhook"):
        answer = client.post(
            "/alerts", json={"alerts": [sent]}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert answer.status_code == 200
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("alert ")]
    assert json.loads(line.removeprefix("alert ")) == sent
