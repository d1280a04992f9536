"""A local stack of its own for the modelmon-ops tests, and the GitHub API recorder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack.processes import wait_until
from local_stack.stack import DEFAULT_VALUES, LocalStack, StackOptions
from opstool import NAMESPACE, RELEASE, STACK_GITHUB_TOKEN, STACK_WEBHOOK_TOKEN, GitHubRecorder

OPS_VALUES = Path(__file__).with_name("values-ops.yaml")


@pytest.fixture(scope="session")
def stack_github() -> Iterator[GitHubRecorder]:
    """Where the chart's own retrain webhook dispatches to, for the whole session."""
    recorder = GitHubRecorder()
    recorder.start()
    yield recorder
    recorder.close()


@pytest.fixture(scope="session")
def ops_stack(stack_github: GitHubRecorder) -> Iterator[LocalStack]:
    options = StackOptions(
        values_files=(DEFAULT_VALUES, OPS_VALUES),
        set_values={
            "model-exporter.retrainWebhook.githubApiUrl": stack_github.url,
        },
        release=RELEASE,
        namespace=NAMESPACE,
        secrets={
            "retrain-webhook-token": {"token": STACK_WEBHOOK_TOKEN},
            "github-token": {"token": STACK_GITHUB_TOKEN},
        },
    )
    with LocalStack(options) as stack:
        wait_until(stack.targets_healthy, 30, describe="every Prometheus target up")
        yield stack


@pytest.fixture(scope="session")
def router_url(ops_stack: LocalStack) -> str:
    return ops_stack.service_url(f"{RELEASE}-model-exporter-router")


@pytest.fixture
def github() -> Iterator[GitHubRecorder]:
    recorder = GitHubRecorder()
    recorder.start()
    yield recorder
    recorder.close()
