"""The end-to-end tier: every test here runs once per backend (local, then kind), each started
once per session. Without a cluster the kind runs are skipped with the reason."""

from __future__ import annotations

from collections.abc import Callable, Iterator

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


FAULTS: list[dict[str, object]] = []


@pytest.fixture
def fault_report(backend: Backend) -> Callable[..., None]:
    """Records what a fault test counted; the run ends with a table of them."""

    def record(fault: str, **counts: object) -> None:
        FAULTS.append({"backend": backend.name, "fault": fault, **counts})

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FAULTS:
        return
    terminalreporter.section("faults survived (what each fault test counted)")
    for row in FAULTS:
        counts = ", ".join(f"{k} {v}" for k, v in row.items() if k not in ("backend", "fault"))
        terminalreporter.write_line(f"{row['backend']:<6} {row['fault']}: {counts}")
