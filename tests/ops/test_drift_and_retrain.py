"""simulate-drift, trigger-retrain and serve-webhook against the local stack. The drift that the
simulator sends raises the model's real error, which fires the MAE alert; the retrain requests go
to a local recorder in GitHub's place, and the webhook is fed by a real Alertmanager."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from retrain_job import run_retrain_job

from local_stack.models import IMAGE_MODEL_DIR
from local_stack.stack import LocalStack
from local_stack.toolchain import REPO_ROOT
from modelmon import artifact, contract
from modelmon.contract import DatasetOutcome
from modelmon.feedback_training import next_version
from modelmon.ops.rows import Rows
from modelmon.recipes import RECIPES
from opstool import (
    NAMESPACE,
    RELEASE,
    STACK_GITHUB_TOKEN,
    STACK_WEBHOOK_TOKEN,
    USER,
    GitHubRecorder,
    Ran,
    run_ops,
)
from support import eventually, only_value, parse_samples
from traffic import Traffic, predictions_with_feedback, real_mae

TOKEN = "ghp_" + "t" * 36  # a made-up token: the tests check it never shows up in output
MAE_ALERT = "ModelPerformanceDegraded"
DRIFT_ALERT = "ModelDriftDetected"
WEBHOOK_POD = "ops-model-exporter-retrain-webhook-0"
DISPATCH_PATH = "/repos/acme/models/actions/workflows/retrain-model.yaml/dispatches"
QUALITY_REASON = (
    r"(MAE|R²|accuracy|drift)\(\d+\.\d{4}\) [<>] [\d.]+ "
    r"\[(ModelPerformanceDegraded|ModelR2Low|ModelAccuracyDropped|ModelDriftDetected), "
    r"(stable|canary)\]"
)


def chart_threshold(alert: str) -> float:
    """The alert's threshold as the umbrella chart's values set it."""
    values = yaml.safe_load((REPO_ROOT / "charts" / "model-monitoring" / "values.yaml").read_text())
    return float(values["rules"]["alerts"][alert]["threshold"])


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


def simulate_drift(
    stack: LocalStack, router_url: str, duration: str, *which: str, rate: str = "20"
) -> Ran:
    return run_ops(
        "simulate-drift",
        *which,
        *("--url", router_url, "--prometheus-url", stack.prometheus.url, "--user", USER),
        *("--rate", rate, "--duration", duration),
    )


def test_drift_fires_the_alert_the_webhook_dispatches_and_the_retrain_learns_from_feedback(
    ops_stack: LocalStack, router_url: str, stack_github: GitHubRecorder, tmp_path: Path
) -> None:
    """drift → alert → Alertmanager → the chart's webhook → dispatch → the retrain job, run as
    the workflow runs it, on the labels the exporters wrote to their claim → better models."""
    feedback = ops_stack.runtime.claims[f"{NAMESPACE}/{RELEASE}-model-exporter-feedback"]
    for written in feedback.rglob("*.parquet"):  # a fresh claim: only this test's labels
        written.unlink()
    # the simulator runs for 40 s; the alert needs 20 s of window and 10 s of `for`
    seen: list[str] = []
    ran_holder: list[Any] = []

    def simulate() -> None:
        ran_holder.append(simulate_drift(ops_stack, router_url, "40s", "--drift-level", "high"))

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

    # The chart's AlertmanagerConfig sends the quality alert to the chart's retrain webhook with
    # the bearer token from its Secret; the webhook reads Prometheus and dispatches, once.
    webhook = ops_stack.pod(WEBHOOK_POD)
    [dispatch] = eventually(
        lambda: list(stack_github.requests),
        bool,
        30,
        "a dispatch from the chart's retrain webhook",
        logs=lambda: webhook.process.log_tail(20) if webhook.process else "",
    )
    assert dispatch.path == DISPATCH_PATH
    assert dispatch.headers["Authorization"] == f"Bearer {STACK_GITHUB_TOKEN}"
    inputs = dispatch.body["inputs"]
    assert inputs["user_id"] == USER
    # the reason is the alert that Alertmanager delivered first, with its value and threshold
    assert re.fullmatch(QUALITY_REASON, inputs["reason"]), inputs["reason"]
    # an empty drift score: no drift alert was among the alerts delivered
    assert inputs["drift_score"] == "" or float(inputs["drift_score"]) > 0.25
    assert webhook.process is not None
    log = webhook.process.log_tail(200)
    assert f'"alertname": "{MAE_ALERT}"' in log  # the webhook logged what it was sent
    assert STACK_GITHUB_TOKEN not in log
    assert STACK_WEBHOOK_TOKEN not in log

    # The dispatched job: every label the exporters took is in the dataset first.
    eventually(
        lambda: dataset_lag(ops_stack),
        lambda lag: lag == 0,
        15,
        "every labelled prediction written to the feedback dataset",
    )
    (tmp_path / "buckets").mkdir()
    (tmp_path / "buckets" / inputs["user_id"]).symlink_to(feedback)
    job = run_retrain_job(tmp_path, inputs["user_id"], f"{tmp_path}/buckets/{{user_id}}")
    assert job.returncode == 0, job.stdout + job.stderr
    assert "nothing published" not in job.stdout
    print(job.stdout)
    served = {
        recipe.file_name: artifact.load(
            ops_stack.runtime.path_map[IMAGE_MODEL_DIR] / recipe.file_name
        )
        for recipe in RECIPES
    }
    for name, model in served.items():
        retrained = artifact.load(tmp_path / "models" / name)
        assert retrained.version == next_version(model.version)
        before, under = real_mae(model, "none", seed=99), real_mae(model, "high", seed=99)
        after = real_mae(retrained, "high", seed=99)
        print(
            f"{name}: MAE before drift {before:.3f}, under drift {under:.3f}, retrained {after:.3f}"
        )
        assert after < 0.8 * under, job.stdout


@pytest.fixture(scope="class")
def drifting(ops_stack: LocalStack, router_url: str) -> Iterator[None]:
    """High-drift traffic for a whole class, so the quality alerts stay active."""
    with Traffic(predictions_with_feedback(router_url, Rows.at_level("high", seed=11)), 20):
        eventually(
            lambda: user_alert_state(ops_stack, MAE_ALERT),
            lambda state: state in ("pending", "firing"),
            60,
            f"{MAE_ALERT} active",
        )
        yield


@pytest.mark.usefixtures("drifting")
class TestRetrainWhileDrifted:
    def test_dry_run_is_the_default_and_names_the_reason(
        self, ops_stack: LocalStack, github: GitHubRecorder, tmp_path: Path
    ) -> None:
        assert USER == "user01"
        ran = run_ops(
            "trigger-retrain",
            "--check-drift",
            "--prometheus-url",
            ops_stack.prometheus.url,
            # the lab's way to say which user: USER_NUM, no --user
            env={**github_env(github, tmp_path / "cooldown.json"), "USER_NUM": "1"},
        )
        assert ran.code == 0, ran.stderr
        assert f"Quality of {USER} in Prometheus" in ran.stdout
        # the lab's two lines, beside ours: the score is the worst variant's drift (PSI)
        assert re.search(r"^Detected: True$", ran.stdout, re.MULTILINE), ran.stdout
        score = re.search(r"^Score: (\d+\.\d{4})$", ran.stdout, re.MULTILINE)
        assert score, ran.stdout
        drift = ops_stack.prometheus.value(f'max(model_drift_score{{user_id="{USER}"}})')
        assert float(score[1]) == pytest.approx(drift, abs=0.05)
        # the threshold is the alert's: rules.alerts.ModelPerformanceDegraded.threshold
        assert re.search(rf"MAE\(0\.\d{{4}}\) > 0\.4 \[{MAE_ALERT}, \w+\]", ran.stdout), ran.stdout
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
        assert set(request.body["inputs"]) == {"user_id", "reason", "drift_score"}
        assert MAE_ALERT in request.body["inputs"]["reason"]
        assert request.body["inputs"]["user_id"] == USER
        drift = ops_stack.prometheus.value(f'max(model_drift_score{{user_id="{USER}"}})')
        assert float(request.body["inputs"]["drift_score"]) == pytest.approx(drift, abs=0.5)
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

    def test_the_charts_webhook_refuses_missing_and_wrong_tokens_and_counts_them(
        self, ops_stack: LocalStack
    ) -> None:
        url = ops_stack.pod(WEBHOOK_POD).url("http")
        assert requests.post(f"{url}/alerts", json={}, timeout=5).status_code == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        assert requests.post(f"{url}/alerts", json={}, headers=wrong, timeout=5).status_code == 401
        right = {"Authorization": f"Bearer {STACK_WEBHOOK_TOKEN}"}
        answer = requests.post(f"{url}/alerts", json={"alerts": []}, headers=right, timeout=5)
        assert answer.status_code == 200
        samples = parse_samples(requests.get(f"{url}/metrics", timeout=5).text)
        rejected = "modelmon_ops_webhook_rejected_total"
        assert only_value(samples, rejected, reason="missing_token") >= 1
        assert only_value(samples, rejected, reason="bad_token") >= 1
        # the drift test's dispatch, and every later alert stopped by the cooldown
        decisions = "modelmon_ops_retrain_decisions_total"
        assert only_value(samples, decisions, action="triggered") == 1
        in_prometheus = ops_stack.prometheus.query(f"sum({rejected})")
        assert in_prometheus, "the ServiceMonitor scrapes the webhook too"


def dataset_lag(stack: LocalStack) -> float:
    """Labels the exporters took that their feedback dataset has not written yet."""
    lag = 0.0
    exporters = {f"{RELEASE}-model-exporter-{variant}" for variant in contract.VARIANTS}
    for pod in stack.pods:
        if pod.workload not in exporters:
            continue
        exposition = requests.get(f"http://127.0.0.1:{pod.port('http')}/metrics", timeout=5).text
        samples = parse_samples(exposition)
        lag += only_value(samples, contract.FEEDBACK.name) - only_value(
            samples, contract.FEEDBACK_DATASET_ROWS.name, outcome=str(DatasetOutcome.WRITTEN)
        )
    return lag


def drift_scores(stack: LocalStack) -> dict[str, float]:
    promql = f'max by (variant) (model_drift_score{{user_id="{USER}"}})'
    return {s.labels["variant"]: s.value for s in stack.prometheus.query(promql)}


def test_reset_refills_the_windows_so_every_drift_score_and_quality_alert_recovers(
    ops_stack: LocalStack, router_url: str
) -> None:
    """After the drifted traffic of the tests above (their windows still hold it), --reset
    sends enough undrifted traffic to replace every row of the drift and quality windows."""
    threshold = chart_threshold(DRIFT_ALERT)
    assert max(drift_scores(ops_stack).values()) > threshold, "the tests above left no drift"
    ran = simulate_drift(ops_stack, router_url, "30s", "--reset", rate="100")
    assert ran.code == 0, ran.stdout + ran.stderr
    rounds = re.findall(
        r"^Round \d: Refilling the quality and drift windows \(stable (\d+) rows at 50%, "
        r"canary (\d+) rows at 50%\)",
        ran.stdout,
        re.MULTILINE,
    )
    assert rounds, ran.stdout
    after = ran.stdout.split("After:")[1]
    for variant, mae in re.findall(r"^\s+(stable|canary)\s+([\d.]+)", after, re.MULTILINE):
        assert float(mae) < 0.40, (variant, ran.stdout)
    scores = drift_scores(ops_stack)
    assert set(scores) == {"stable", "canary"}
    assert all(score < threshold for score in scores.values()), scores
    for alert in (MAE_ALERT, DRIFT_ALERT):
        assert re.search(rf"{alert}\s+condition not met", ran.stdout), ran.stdout
        eventually(
            lambda alert=alert: user_alert_state(ops_stack, alert),
            lambda state: state == "inactive",
            30,
            f"{alert} resolved",
        )
