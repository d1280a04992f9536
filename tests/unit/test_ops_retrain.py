"""The retrain decision, the cooldown and the dry-run default, without any network."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelmon.ops.errors import OpsError
from modelmon.ops.readings import Quality
from modelmon.ops.retrain import Cooldown, GitHubWorkflow, Thresholds, act, decide


def quality(mae: float, r2: float, drift: float) -> Quality:
    return Quality(
        mae={"stable": 0.2, "canary": mae},
        r2={"stable": 0.9, "canary": r2},
        accuracy={},
        drift={"stable": 0.01, "canary": drift},
    )


def test_the_reason_names_the_worst_measure_and_its_threshold() -> None:
    decision = decide(quality(0.5005, 0.9, 0.1), Thresholds())
    assert decision.retrain
    assert decision.reasons == ["MAE(0.5005) > 0.45"]
    both = decide(quality(0.5, 0.6, 0.3), Thresholds())
    assert both.reasons == ["MAE(0.5000) > 0.45", "R²(0.6000) < 0.7", "drift(0.3000) > 0.25"]
    assert both.drift_score == pytest.approx(0.3)


def test_healthy_or_missing_measures_do_not_retrain() -> None:
    assert not decide(quality(0.3, 0.85, 0.1), Thresholds()).retrain
    empty = decide(Quality({}, {}, {}, {}), Thresholds())
    assert not empty.retrain
    assert "no data" in empty.reasons[0]


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
        decide(quality(0.6, 0.9, 0.1), Thresholds()),
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


def test_the_token_never_shows_in_the_workflow_repr() -> None:
    workflow = GitHubWorkflow("acme/models", "ghp_secret")
    assert "ghp_secret" not in repr(workflow)
    assert "ghp_secret" not in str(workflow)


@pytest.mark.parametrize("repo", ["acme", "acme/", "/models", "a/b/c"])
def test_a_repository_must_be_owner_slash_name(repo: str) -> None:
    with pytest.raises(OpsError, match="expected owner/name"):
        GitHubWorkflow(repo, "token")
