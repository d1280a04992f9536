"""Fixtures shared by every tier of the suite."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import modelmon
from local_stack import chart
from local_stack.models import ensure_models
from local_stack.pods import free_port
from local_stack.processes import ManagedProcess, Supervisor
from local_stack.toolchain import REPO_ROOT
from support import FAULT_PROPERTY, wait_answering

BIN_DIR = Path(sys.executable).parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The shipped model artifacts, trained as the image build trains them (cached)."""
    return ensure_models(BIN_DIR / "modelmon-train", Path(modelmon.__file__).parent)


@dataclass
class RunningExporter:
    url: str
    process: ManagedProcess


def _exporter_starter(supervisor: Supervisor, model_dir: Path) -> Callable[..., RunningExporter]:
    def start(*args: str, model: str = "model-v2.joblib") -> RunningExporter:
        port = free_port()
        process = supervisor.start(
            f"exporter-{port}",
            [
                str(BIN_DIR / "modelmon-exporter"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--model-path",
                str(model_dir / model),
                *args,
            ],
        )
        url = f"http://127.0.0.1:{port}"
        wait_answering(f"{url}/readyz", process, "exporter")
        return RunningExporter(url, process)

    return start


@pytest.fixture
def start_exporter(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path
) -> Iterator[Callable[..., RunningExporter]]:
    """Starts real `modelmon-exporter` processes on free loopback ports; stops them after."""
    supervisor = Supervisor(tmp_path_factory.mktemp("exporter-logs"))
    yield _exporter_starter(supervisor, model_dir)
    supervisor.stop_all()


@pytest.fixture(scope="module")
def start_exporter_module(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path
) -> Iterator[Callable[..., RunningExporter]]:
    """As start_exporter, for processes that a whole test module shares."""
    supervisor = Supervisor(tmp_path_factory.mktemp("exporter-logs"))
    yield _exporter_starter(supervisor, model_dir)
    supervisor.stop_all()


@pytest.fixture(scope="session")
def umbrella(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A renderable copy of the umbrella chart (see local_stack.chart.prepare_umbrella)."""
    return chart.prepare_umbrella(tmp_path_factory.mktemp("umbrella"))


@pytest.fixture(scope="session")
def stack_chart() -> Path:
    source = chart.stack_chart_source()
    if source is None:
        pytest.skip(
            "the kube-prometheus-stack chart is not available here (its chart repository cannot "
            f"be reached): run `helm dependency build charts/model-monitoring` or set "
            f"{chart.STACK_CHART_ENV}"
        )
    return source


FAULTS: list[dict[str, object]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        FAULTS.extend(value for name, value in report.user_properties if name == FAULT_PROPERTY)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FAULTS:
        return
    terminalreporter.section("faults survived (what each fault test counted)")
    for row in FAULTS:
        counts = ", ".join(f"{k} {v}" for k, v in row.items() if k not in ("backend", "fault"))
        terminalreporter.write_line(f"{row['backend']:<6} {row['fault']}: {counts}")
