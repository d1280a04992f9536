"""The end-to-end tier: every test here runs once per backend (local, then kind), each started
once per session. Without a cluster the kind runs are skipped with the reason."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from tenancy import Tenancy, start_tenancy

from backends import Backend, KindBackend, start_backend
from support import FAULT_PROPERTY

BACKENDS = ["local", pytest.param("kind", marks=pytest.mark.kind)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS, indirect=True, scope="session")
    if "tenancy" in metafunc.fixturenames:
        metafunc.parametrize("tenancy", BACKENDS, indirect=True, scope="module")


@pytest.fixture(scope="session")
def kind_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """The kind cluster with the platform's release, shared by the backend and the tenancy."""
    started = start_backend("kind", request.config, tmp_path_factory.mktemp("kind"))
    yield started
    started.stop()


@pytest.fixture(scope="session")
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    if request.param == "kind":
        yield request.getfixturevalue("kind_backend")
        return
    started = start_backend(request.param, request.config, tmp_path_factory.mktemp(request.param))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def tenancy(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tenancy]:
    """The platform's release and users attached to its stack (tenancy.py)."""
    kind = request.getfixturevalue("kind_backend") if request.param == "kind" else None
    assert kind is None or isinstance(kind, KindBackend)
    started = start_tenancy(
        request.param, kind, tmp_path_factory.mktemp(f"tenants-{request.param}")
    )
    yield started
    started.stop()


@pytest.fixture
def fault_report(backend: Backend, request: pytest.FixtureRequest) -> Callable[..., None]:
    """Records what a fault test counted; the run ends with a table of them (tests/conftest.py).

    The counts travel on the test's report, so they reach the summary from xdist workers too."""

    def record(fault: str, **counts: object) -> None:
        request.node.user_properties.append(
            (FAULT_PROPERTY, {"backend": backend.name, "fault": fault, **counts})
        )

    return record
