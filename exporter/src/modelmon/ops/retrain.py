"""Deciding to retrain, and asking GitHub Actions to do it (workflow_dispatch), at most once per
cooldown per user."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from modelmon.ops.errors import OpsError
from modelmon.ops.readings import Quality

WORKFLOW = "retrain-model.yaml"
GITHUB_API = "https://api.github.com"


@dataclass(frozen=True)
class Thresholds:
    max_mae: float = 0.45
    min_r2: float = 0.70
    max_drift: float = 0.25


@dataclass(frozen=True)
class Decision:
    retrain: bool
    reasons: list[str]
    drift_score: float


def decide(quality: Quality, thresholds: Thresholds) -> Decision:
    """Retrain when any variant's MAE, R² or drift crosses its threshold; the reasons say which."""
    worst = quality.worst()
    reasons = []
    if worst.get("mae", 0.0) > thresholds.max_mae:
        reasons.append(f"MAE({worst['mae']:.4f}) > {thresholds.max_mae:g}")
    if "r2" in worst and worst["r2"] < thresholds.min_r2:
        reasons.append(f"R²({worst['r2']:.4f}) < {thresholds.min_r2:g}")
    if worst.get("drift", 0.0) > thresholds.max_drift:
        reasons.append(f"drift({worst['drift']:.4f}) > {thresholds.max_drift:g}")
    if not reasons:
        shown = ", ".join(f"{name} {value:.4f}" for name, value in worst.items()) or "no data"
        reasons.append(f"every measure within its threshold ({shown})")
        return Decision(False, reasons, worst.get("drift", 0.0))
    return Decision(True, reasons, worst.get("drift", 0.0))


class Cooldown:
    """The time of each user's last retrain request, in a JSON file so it survives restarts."""

    def __init__(self, state_file: Path, seconds: float) -> None:
        self._file = state_file
        self.seconds = seconds

    def _read(self) -> dict[str, float]:
        try:
            data = json.loads(self._file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise OpsError(f"cooldown state {self._file} is unreadable: {exc}") from exc
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def remaining(self, user: str, now: float | None = None) -> float:
        last = self._read().get(user)
        if last is None:
            return 0.0
        return max(0.0, last + self.seconds - (time.time() if now is None else now))

    def record(self, user: str, now: float | None = None) -> None:
        data = self._read()
        data[user] = time.time() if now is None else now
        self._file.parent.mkdir(parents=True, exist_ok=True)
        partial = self._file.with_suffix(".partial")
        partial.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(partial, self._file)


@dataclass(frozen=True)
class GitHubWorkflow:
    repo: str  # owner/name
    token: str
    api_url: str = GITHUB_API
    workflow: str = WORKFLOW
    ref: str = "main"

    def __post_init__(self) -> None:
        owner, _, name = self.repo.partition("/")
        if not owner or not name or "/" in name:
            raise OpsError(f"GITHUB_REPO {self.repo!r}: expected owner/name")

    def __repr__(self) -> str:  # never show the token, even in a debugger or a log line
        return f"GitHubWorkflow(repo={self.repo!r}, workflow={self.workflow!r}, ref={self.ref!r})"

    @property
    def dispatch_url(self) -> str:
        base = self.api_url.rstrip("/")
        return f"{base}/repos/{self.repo}/actions/workflows/{self.workflow}/dispatches"

    def body(self, user: str, drift_score: float) -> dict[str, object]:
        # workflow_dispatch inputs are strings
        return {"ref": self.ref, "inputs": {"user_id": user, "drift_score": f"{drift_score:.4f}"}}

    def dispatch(self, user: str, drift_score: float) -> None:
        try:
            response = requests.post(
                self.dispatch_url,
                json=self.body(user, drift_score),
                headers={
                    "Accept": "application/vnd.github+json",
                    "Authorization": f"Bearer {self.token}",
                    "X-GitHub-Api-Version": "2022-11-28",
                },
                timeout=15,
            )
        except requests.RequestException as exc:
            raise OpsError(
                f"cannot reach the GitHub API at {self.api_url} ({type(exc).__name__})"
            ) from exc
        if response.status_code != 204:
            message = ""
            try:
                message = str(response.json().get("message", ""))
            except ValueError:
                message = response.text[:200]
            status = f"HTTP {response.status_code} {message}".strip()
            raise OpsError(f"GitHub refused the workflow dispatch: {status}")


@dataclass(frozen=True)
class Outcome:
    action: str  # triggered, dry_run, cooldown, not_needed
    message: str


def act(
    decision: Decision,
    user: str,
    *,
    workflow: GitHubWorkflow | None,
    cooldown: Cooldown,
    dry_run: bool,
    force: bool,
) -> Outcome:
    """The same path for the CLI and the webhook: decide, respect the cooldown, dispatch."""
    if not decision.retrain and not force:
        return Outcome("not_needed", "no retrain: " + "; ".join(decision.reasons))
    why = "; ".join(decision.reasons) if decision.retrain else "forced"
    remaining = cooldown.remaining(user)
    if remaining > 0 and not force:
        return Outcome(
            "cooldown",
            f"retrain needed ({why}) but {user} was retrained less than "
            f"{cooldown.seconds:g} s ago: next possible in {remaining:.0f} s",
        )
    if dry_run or workflow is None:
        target = workflow.dispatch_url if workflow else f"the {WORKFLOW} workflow"
        return Outcome("dry_run", f"retrain needed ({why}); dry run, would dispatch {target}")
    workflow.dispatch(user, decision.drift_score)
    cooldown.record(user)
    return Outcome(
        "triggered",
        f"retrain triggered ({why}): {workflow.workflow} on {workflow.repo}@{workflow.ref} "
        f"with user_id={user}",
    )
