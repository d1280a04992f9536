"""The end-to-end tier: every test here runs once per backend (local, then kind), each started
once per session. Without a cluster the kind runs are skipped with the reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backends import Backend, start_backend


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize(
            "backend",
            ["local", pytest.param("kind", marks=pytest.mark.kind)],
            indirect=True,
            scope="session",
        )


@pytest.fixture(scope="session")
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    started = start_backend(request.param, request.config, tmp_path_factory.mktemp(request.param))
    yield started
    started.stop()
