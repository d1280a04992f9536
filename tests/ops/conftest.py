"""A local stack of its own for the modelmon-ops tests, and the GitHub API recorder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack.processes import wait_until
from local_stack.stack import DEFAULT_VALUES, LocalStack, StackOptions
from opstool import RELEASE, GitHubRecorder

OPS_VALUES = Path(__file__).with_name("values-ops.yaml")


@pytest.fixture(scope="session")
def ops_stack() -> Iterator[LocalStack]:
    options = StackOptions(
        values_files=(DEFAULT_VALUES, OPS_VALUES), release=RELEASE, namespace="kubeflow-user01"
    )
    with LocalStack(options) as stack:
        wait_until(stack.targets_healthy, 30, describe="every Prometheus target up")
        yield stack


@pytest.fixture(scope="session")
def router_url(ops_stack: LocalStack) -> str:
    return ops_stack.pod(f"{RELEASE}-model-exporter-router-0").url("http")


@pytest.fixture
def github() -> Iterator[GitHubRecorder]:
    recorder = GitHubRecorder()
    recorder.start()
    yield recorder
    recorder.close()
