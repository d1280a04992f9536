"""The router as a real process in front of one real exporter; the canary URL points at a port
nobody listens on, so every canary choice must fail over to stable."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from local_stack.pods import free_port
from local_stack.processes import Supervisor
from modelmon.contract import LAB_HEALTH_PATH
from support import only_value, parse_samples, wait_answering

BIN_DIR = Path(sys.executable).parent
ROW = {f"x{i}": 0.1 * i for i in range(1, 11)}


def start_router(supervisor: Supervisor, workdir: Path, stable_url: str, canary_url: str) -> str:
    (workdir / "weight").write_text("100")
    port = free_port()
    process = supervisor.start(
        f"router-{port}",
        [
            str(BIN_DIR / "modelmon-router"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--stable-url",
            stable_url,
            "--canary-url",
            canary_url,
            "--weight-file",
            str(workdir / "weight"),
            "--user-id",
            "user42",
        ],
    )
    url = f"http://127.0.0.1:{port}"
    wait_answering(f"{url}/readyz", process, "router")
    return url


@pytest.fixture(scope="module")
def supervisor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    running = Supervisor(tmp_path_factory.mktemp("router-logs"))
    yield running
    running.stop_all()


@pytest.fixture(scope="module")
def router(
    tmp_path_factory: pytest.TempPathFactory,
    start_exporter_module: Callable[..., Any],
    supervisor: Supervisor,
) -> str:
    stable = start_exporter_module("--variant", "stable")
    workdir = tmp_path_factory.mktemp("router")
    return start_router(supervisor, workdir, stable.url, f"http://127.0.0.1:{free_port()}")


def test_a_dead_canary_fails_over_to_stable_and_is_counted(router: str) -> None:
    answer = requests.post(f"{router}/predict", json={"features": ROW}, timeout=5)
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Model-Variant"] == "stable"
    assert answer.headers["X-Canary-Failover"] == "1"
    samples = parse_samples(requests.get(f"{router}/metrics", timeout=5).text)
    failovers = only_value(
        samples, "router_failovers_total", from_variant="canary", to_variant="stable"
    )
    assert failovers >= 1


def test_user_id_in_the_body_is_taken_out_before_the_exporter_sees_it(router: str) -> None:
    answer = requests.post(
        f"{router}/predict", json={"features": ROW, "user_id": "alice"}, timeout=5
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["prediction_id"].startswith("stable-")


def test_exporter_validation_errors_pass_through_unchanged(router: str) -> None:
    answer = requests.post(f"{router}/predict", json={"features": {"x1": "NaN"}}, timeout=5)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/predict", 405), ("POST", "/healthz", 405), ("GET", "/nope", 404)],
)
def test_unknown_routes_and_methods_are_refused(
    router: str, method: str, path: str, status: int
) -> None:
    answer = requests.request(method, f"{router}{path}", timeout=5)
    assert answer.status_code == status
    assert answer.json()["detail"][0]["type"] in {"not_found", "method_not_allowed"}


def test_feedback_for_an_unknown_variant_is_a_404_with_its_reason(router: str) -> None:
    answer = requests.post(
        f"{router}/feedback", json={"prediction_id": "blue-123", "actual": 1.0}, timeout=5
    )
    assert answer.status_code == 404
    assert answer.json()["detail"][0]["loc"] == ["body", "prediction_id"]


def test_the_labs_health_path_answers_as_healthz(router: str) -> None:
    for path in ("/healthz", LAB_HEALTH_PATH):
        answer = requests.get(f"{router}{path}", timeout=5)
        assert answer.status_code == 200, path
        assert answer.json() == requests.get(f"{router}/healthz", timeout=5).json()


def test_readiness_reports_the_weight_in_force(router: str) -> None:
    assert requests.get(f"{router}/readyz", timeout=5).json()["canary_weight"] == 100
    samples = parse_samples(requests.get(f"{router}/metrics", timeout=5).text)
    assert only_value(samples, "router_canary_weight_ratio", user_id="user42") == 1.0


def test_an_overloaded_exporters_503_reaches_the_client_with_its_retry_after(
    tmp_path_factory: pytest.TempPathFactory,
    start_exporter_module: Callable[..., Any],
    supervisor: Supervisor,
) -> None:
    canary = start_exporter_module(
        "--variant", "canary", "--batching-queue-rows", "1", model="model-v1.joblib"
    )
    url = start_router(supervisor, tmp_path_factory.mktemp("overloaded"), canary.url, canary.url)
    batch = {"instances": [ROW] * 200}

    def send(_: int) -> tuple[int, str | None]:
        answer = requests.post(f"{url}/predict", json=batch, timeout=60)
        return answer.status_code, answer.headers.get("Retry-After")

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(send, range(96)))
    assert {status for status, _ in answers} == {200, 503}, "some served, some refused"
    assert {retry for status, retry in answers if status == 503} == {"1"}
