"""The local stack, started once for the end-to-end tests of a session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_stack.processes import wait_until
from local_stack.stack import LocalStack, StackOptions


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    with LocalStack(StackOptions(release="e2e", namespace="kubeflow-user01")) as stack:
        wait_until(stack.targets_healthy, 30, describe="every Prometheus target up")
        yield stack
