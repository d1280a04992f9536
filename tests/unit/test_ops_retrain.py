"""The retrain decision (from the alerts that ask for one), the cooldown and the dry-run default,
without any network."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelmon.contract import (
    ACTION_LABEL,
    MEASURE_LABEL,
    RETRAIN_ACTION,
    THRESHOLD_ANNOTATION,
    VALUE_ANNOTATION,
)
from modelmon.ops.cooldown import Cooldown
from modelmon.ops.errors import OpsError
from modelmon.ops.github import GitHubWorkflow
from modelmon.ops.retrain import act, decide, retrain_alerts


def alert(
    name: str,
    measure: str | None,
    value: str,
    threshold: str,
    *,
    status: str = "firing",
    user: str | None = "user07",
    action: str = RETRAIN_ACTION,
) -> dict[str, object]:
    """An alert as Alertmanager's webhook payload carries it."""
    labels = {"alertname": name, "variant": "canary", ACTION_LABEL: action}
    if measure:
        labels[MEASURE_LABEL] = measure
    if user:
        labels["user_id"] = user
    annotations = {VALUE_ANNOTATION: value, THRESHOLD_ANNOTATION: threshold}
    return {"status": status, "labels": labels, "annotations": annotations}


def test_the_reason_names_each_alert_its_value_and_its_threshold() -> None:
    decision = decide(retrain_alerts([alert("ModelPerformanceDegraded", "mae", "0.5005", "0.4")]))
    assert decision.retrain
    assert decision.reasons == ["MAE(0.5005) > 0.4 [ModelPerformanceDegraded, canary]"]
    assert decision.drift_score is None
    several = decide(
        retrain_alerts(
            [
                alert("ModelR2Low", "r2", "0.6", "0.75"),
                alert("ModelDriftDetected", "drift", "3.1e-01", "0.25"),
                alert("ModelAccuracyDropped", "accuracy", "0.5", "0.75"),
            ]
        )
    )
    assert several.reasons == [
        "R²(0.6000) < 0.75 [ModelR2Low, canary]",
        "accuracy(0.5000) < 0.75 [ModelAccuracyDropped, canary]",
        "drift(0.3100) > 0.25 [ModelDriftDetected, canary]",
    ]
    assert several.drift_score == pytest.approx(0.31)


def test_an_alert_of_your_own_with_the_label_asks_too_even_without_a_measure() -> None:
    [mine] = retrain_alerts([alert("FewGoodPredictions", None, "3", "5")])
    assert decide([mine]).reasons == [
        "FewGoodPredictions(3.0000) past 5 [FewGoodPredictions, canary]"
    ]


def test_prometheus_active_alerts_count_pending_ones_as_the_condition_holding_now() -> None:
    from_prometheus = {
        "labels": {"alertname": "ModelR2Low", ACTION_LABEL: RETRAIN_ACTION, "user_id": "u1"},
        "annotations": {THRESHOLD_ANNOTATION: "0.75"},
        "state": "pending",
        "value": "6.5e-01",
    }
    [found] = retrain_alerts([from_prometheus])
    assert (found.state, found.value, found.measure) == ("pending", 0.65, None)


@pytest.mark.parametrize(
    "ignored",
    [
        alert("ModelDriftDetected", "drift", "0.3", "0.25", status="resolved"),
        alert("ModelLatencyHigh", None, "0.3", "0.1", action="page"),
        alert("ModelAccuracyDropped", "accuracy", "0.5", "0.75", user=None),
        {"labels": "not a mapping"},
        "not an alert",
    ],
    ids=["resolved", "another action", "no user", "bad labels", "not a mapping"],
)
def test_only_active_alerts_that_ask_for_a_retrain_and_name_a_user_count(ignored) -> None:
    assert retrain_alerts([ignored]) == []


def test_no_active_alert_means_no_retrain() -> None:
    decision = decide([])
    assert not decision.retrain
    assert decision.reasons == ["no quality alert is active"]


def test_cooldown_survives_a_restart_and_expires(tmp_path: Path) -> None:
    state = tmp_path / "state" / "cooldown.json"
    Cooldown(state, 3600).record("user07", now=1000.0)
    again = Cooldown(state, 3600)  # a new process reads the same file
    assert again.remaining("user07", now=1000.0 + 600) == pytest.approx(3000)
    assert again.remaining("user07", now=1000.0 + 3600) == 0
    assert again.remaining("user08", now=1000.0) == 0


def test_a_corrupt_cooldown_file_is_an_error_not_a_silent_reset(tmp_path: Path) -> None:
    state = tmp_path / "cooldown.json"
    state.write_text("{not json")
    with pytest.raises(OpsError, match="unreadable"):
        Cooldown(state, 60).remaining("user07")


def test_dry_run_dispatches_nothing_and_records_no_cooldown(tmp_path: Path) -> None:
    workflow = GitHubWorkflow("acme/models", "secret-token", api_url="http://127.0.0.1:9")
    cooldown = Cooldown(tmp_path / "cooldown.json", 60)
    outcome = act(
        decide(retrain_alerts([alert("ModelPerformanceDegraded", "mae", "0.6", "0.4")])),
        "user07",
        workflow=workflow,
        cooldown=cooldown,
        dry_run=True,
        force=False,
    )
    assert outcome.action == "dry_run"
    assert "http://127.0.0.1:9/repos/acme/models/actions/workflows/retrain-model.yaml" in (
        outcome.message
    )
    assert cooldown.remaining("user07") == 0


def test_a_dry_run_keeps_a_cooldown_of_its_own_apart_from_the_real_one(tmp_path: Path) -> None:
    cooldown = Cooldown(tmp_path / "cooldown.json", 60)
    decision = decide(retrain_alerts([alert("ModelR2Low", "r2", "0.6", "0.75")]))
    first = act(decision, "user07", workflow=None, cooldown=cooldown, dry_run=True, force=False)
    again = act(decision, "user07", workflow=None, cooldown=cooldown, dry_run=True, force=False)
    assert (first.action, again.action) == ("dry_run", "cooldown")
    assert "retrained (in this dry run) less than 60 s ago" in again.message
    assert cooldown.remaining("user07") == 0, "a real retrain is never held back by a dry run"
    assert not (tmp_path / "cooldown.json").exists()


def test_the_dispatch_body_carries_the_reason_and_an_unknown_drift_as_empty() -> None:
    workflow = GitHubWorkflow("acme/models", "token")
    body = workflow.body("user07", "MAE(0.5000) > 0.4", None)
    assert body == {
        "ref": "main",
        "inputs": {"user_id": "user07", "reason": "MAE(0.5000) > 0.4", "drift_score": ""},
    }
    assert workflow.body("user07", "x" * 5000, 0.31234)["inputs"] == {
        "user_id": "user07",
        "reason": "x" * 1000,
        "drift_score": "0.3123",
    }


def test_the_token_never_shows_in_the_workflow_repr() -> None:
    workflow = GitHubWorkflow("acme/models", "ghp_secret")
    assert "ghp_secret" not in repr(workflow)
    assert "ghp_secret" not in str(workflow)


@pytest.mark.parametrize("repo", ["acme", "acme/", "/models", "a/b/c"])
def test_a_repository_must_be_owner_slash_name(repo: str) -> None:
    with pytest.raises(OpsError, match="expected owner/name"):
        GitHubWorkflow(repo, "token")
