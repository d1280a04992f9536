"""simulate-drift, trigger-retrain and serve-webhook against the local stack. The drift that the
simulator sends raises the model's real error, which fires the MAE alert; the retrain requests go
to a local recorder in GitHub's place, and the webhook is fed by a real Alertmanager."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from local_stack import alerting
from local_stack.pods import free_port
from local_stack.processes import Supervisor, wait_until
from local_stack.stack import LocalStack
from modelmon.ops.rows import Rows
from opstool import USER, GitHubRecorder, Ran, run_ops
from support import eventually, only_value, parse_samples, start_serve_webhook
from traffic import Traffic, predictions_with_feedback

TOKEN = "ghp_" + "t" * 36  # a made-up token: the tests check it never shows up in output
WEBHOOK_TOKEN = "w" * 32
MAE_ALERT = "ModelPerformanceDegraded"
DISPATCH_PATH = "/repos/acme/models/actions/workflows/retrain-model.yaml/dispatches"


def user_alert_state(stack: LocalStack, name: str) -> str:
    states = {
        alert["state"]
        for alert in stack.prometheus.alerts()
        if alert["labels"].get("alertname") == name and alert["labels"].get("user_id") == USER
    }
    return next((s for s in ("firing", "pending") if s in states), "inactive")


def github_env(github: GitHubRecorder, state_file: Path) -> dict[str, str]:
    return {
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPO": "acme/models",
        "GITHUB_API_URL": github.url,
        "MODELMON_OPS_STATE_FILE": str(state_file),
    }


def simulate_drift(stack: LocalStack, router_url: str, duration: str, *which: str) -> Ran:
    return run_ops(
        "simulate-drift",
        *which,
        *("--url", router_url, "--prometheus-url", stack.prometheus.url, "--user", USER),
        *("--rate", "20", "--duration", duration),
    )


def test_high_drift_raises_the_real_error_and_fires_the_mae_alert(
    ops_stack: LocalStack, router_url: str
) -> None:
    # the simulator runs for 40 s; the alert needs 20 s of window and 10 s of `for`
    seen: list[str] = []
    ran_holder: list[Any] = []

    def simulate() -> None:
        ran_holder.append(simulate_drift(ops_stack, router_url, "40s", "--level", "high"))

    runner = threading.Thread(target=simulate)
    runner.start()
    try:
        eventually(
            lambda: user_alert_state(ops_stack, MAE_ALERT),
            lambda state: seen.append(state) or state == "firing",
            90,
            f"{MAE_ALERT} firing for {USER} while the simulator runs",
        )
    finally:
        runner.join(timeout=120)
    [ran] = ran_holder
    assert ran.code == 0, ran.stderr
    after = ran.stdout.split("After:")[1]
    [(mae, r2)] = re.findall(r"^\s+stable\s+([\d.]+)\s+([\d.-]+)", after, re.MULTILINE)
    assert float(mae) > 0.40, ran.stdout  # the threshold of ModelPerformanceDegraded
    assert float(r2) < 0.75, ran.stdout  # and of ModelR2Low
    assert re.search(rf"{MAE_ALERT}\s+condition MET", ran.stdout), ran.stdout
    assert "pending" in seen or "firing" in seen


@pytest.fixture(scope="class")
def drifting(ops_stack: LocalStack, router_url: str) -> Iterator[None]:
    """High-drift traffic for a whole class, so the measures stay over their thresholds."""
    with Traffic(predictions_with_feedback(router_url, Rows.at_level("high", seed=11)), 20):
        eventually(
            lambda: ops_stack.prometheus.query(f'max(model:mae{{user_id="{USER}"}})'),
            lambda result: bool(result) and float(result[0]["value"][1]) > 0.45,
            60,
            "MAE above the retrain threshold",
        )
        yield


@pytest.mark.usefixtures("drifting")
class TestRetrainWhileDrifted:
    def test_dry_run_is_the_default_and_names_the_reason(
        self, ops_stack: LocalStack, github: GitHubRecorder, tmp_path: Path
    ) -> None:
        ran = run_ops(
            "trigger-retrain",
            "--check-drift",
            "--prometheus-url",
            ops_stack.prometheus.url,
            "--user",
            USER,
            env=github_env(github, tmp_path / "cooldown.json"),
        )
        assert ran.code == 0, ran.stderr
        assert re.search(r"MAE\(0\.\d{4}\) > 0\.45", ran.stdout), ran.stdout
        assert "dry run, would dispatch" in ran.stdout
        assert github.requests == []
        assert not (tmp_path / "cooldown.json").exists()

    def test_dispatch_sends_githubs_exact_request_then_the_cooldown_holds(
        self, ops_stack: LocalStack, github: GitHubRecorder, tmp_path: Path
    ) -> None:
        env = github_env(github, tmp_path / "cooldown.json")
        args = ("trigger-retrain", "--check-drift", "--no-dry-run", "--user", USER)
        args += ("--prometheus-url", ops_stack.prometheus.url)
        first = run_ops(*args, env=env)
        assert first.code == 0, first.stderr
        assert "retrain triggered" in first.stdout
        [request] = github.requests
        assert request.path == DISPATCH_PATH
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["Accept"] == "application/vnd.github+json"
        assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
        assert request.body["ref"] == "main"
        assert set(request.body["inputs"]) == {"user_id", "drift_score"}
        assert request.body["inputs"]["user_id"] == USER
        drift = ops_stack.prometheus.query(f'max(model_drift_score{{user_id="{USER}"}})')
        assert float(request.body["inputs"]["drift_score"]) == pytest.approx(
            float(drift[0]["value"][1]), abs=0.5
        )
        assert float(request.body["inputs"]["drift_score"]) > 0.25

        again = run_ops(*args, env=env)
        assert again.code == 0, again.stderr
        assert "next possible in" in again.stdout
        assert len(github.requests) == 1

        forced = run_ops(*args, "--force-trigger", env=env)
        assert forced.code == 0, forced.stderr
        assert len(github.requests) == 2
        for ran in (first, again, forced):
            assert TOKEN not in ran.stdout + ran.stderr

    def test_a_refused_dispatch_is_one_line_and_starts_no_cooldown(
        self, ops_stack: LocalStack, github: GitHubRecorder, tmp_path: Path
    ) -> None:
        github.status = 401
        ran = run_ops(
            "trigger-retrain",
            "--check-drift",
            "--no-dry-run",
            "--prometheus-url",
            ops_stack.prometheus.url,
            "--user",
            USER,
            env=github_env(github, tmp_path / "cooldown.json"),
        )
        assert ran.code == 2
        assert ran.stderr.strip() == (
            "modelmon-ops trigger-retrain: error: GitHub refused the workflow dispatch: "
            "HTTP 401 Bad credentials"
        )
        assert TOKEN not in ran.stdout + ran.stderr
        assert not (tmp_path / "cooldown.json").exists()

    def test_alertmanager_delivers_to_the_webhook_which_dispatches_and_refuses_bad_tokens(
        self, ops_stack: LocalStack, github: GitHubRecorder, tmp_path: Path
    ) -> None:
        supervisor = Supervisor(tmp_path / "logs")
        token_file = tmp_path / "webhook-token"
        token_file.write_text(WEBHOOK_TOKEN)
        am_port = free_port()
        try:
            webhook, url = start_serve_webhook(
                supervisor,
                token_file,
                ops_stack.prometheus.url,
                "--no-dry-run",
                env={**os.environ, **github_env(github, tmp_path / "cooldown.json")},
            )
            assert requests.post(f"{url}/alerts", json={}, timeout=5).status_code == 401
            wrong = {"Authorization": "Bearer not-the-token"}
            assert (
                requests.post(f"{url}/alerts", json={}, headers=wrong, timeout=5).status_code == 401
            )

            config = {
                "route": {"receiver": "retrain", "group_wait": "1s", "group_by": ["alertname"]},
                "receivers": [
                    {
                        "name": "retrain",
                        "webhook_configs": [
                            {
                                "url": f"{url}/alerts",
                                "send_resolved": False,
                                "http_config": {
                                    "authorization": {"credentials_file": str(token_file)}
                                },
                            }
                        ],
                    }
                ],
            }
            alerting.start(supervisor, config, tmp_path, am_port)
            am_url = f"http://127.0.0.1:{am_port}"
            wait_until(lambda: alerting.ready(am_url), 30, describe="Alertmanager ready")
            alert = {
                "labels": {
                    "alertname": MAE_ALERT,
                    "user_id": USER,
                    "namespace": "kubeflow-user01",
                    "severity": "warning",
                }
            }
            requests.post(f"{am_url}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()
            eventually(
                lambda: list(github.requests),
                bool,
                30,
                "a dispatch from the webhook",
                logs=webhook.log_tail,
            )
            [request] = github.requests
            assert request.path == DISPATCH_PATH
            assert request.body["inputs"]["user_id"] == USER

            samples = parse_samples(requests.get(f"{url}/metrics", timeout=5).text)
            rejected = "modelmon_ops_webhook_rejected_total"
            assert only_value(samples, rejected, reason="missing_token") == 1
            assert only_value(samples, rejected, reason="bad_token") == 1
            assert (
                only_value(samples, "modelmon_ops_retrain_decisions_total", action="triggered") == 1
            )
            assert WEBHOOK_TOKEN not in webhook.log_tail()
            assert TOKEN not in webhook.log_tail()
        finally:
            supervisor.stop_all()


def test_reset_sends_undrifted_traffic_and_the_mae_alert_resolves(
    ops_stack: LocalStack, router_url: str
) -> None:
    ran = simulate_drift(ops_stack, router_url, "30s", "--reset")
    assert ran.code == 0, ran.stderr
    after = ran.stdout.split("After:")[1]
    for variant, mae in re.findall(r"^\s+(stable|canary)\s+([\d.]+)", after, re.MULTILINE):
        assert float(mae) < 0.40, (variant, ran.stdout)
    assert re.search(rf"{MAE_ALERT}\s+condition not met", ran.stdout), ran.stdout
    eventually(
        lambda: user_alert_state(ops_stack, MAE_ALERT),
        lambda state: state == "inactive",
        30,
        f"{MAE_ALERT} resolved",
    )
