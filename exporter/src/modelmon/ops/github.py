"""Asking GitHub Actions to retrain: a workflow_dispatch of the retrain workflow."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from modelmon.ops.errors import OpsError

WORKFLOW = "retrain-model.yaml"
GITHUB_API = "https://api.github.com"
# workflow_dispatch inputs are strings, each at most this long
INPUT_LIMIT = 1000


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

    def body(self, user: str, reason: str, drift_score: float | None) -> dict[str, object]:
        """An unknown drift score is sent empty: the retrain was asked for by another measure."""
        drift = "" if drift_score is None else f"{drift_score:.4f}"
        inputs = {"user_id": user, "reason": reason[:INPUT_LIMIT], "drift_score": drift}
        return {"ref": self.ref, "inputs": inputs}

    def dispatch(self, user: str, reason: str, drift_score: float | None) -> None:
        try:
            response = requests.post(
                self.dispatch_url,
                json=self.body(user, reason, drift_score),
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
