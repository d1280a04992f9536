"""Bad input never gets a 5xx, on any HTTP surface: the exporter, the router and the retrain
webhook, each a real process, get a corpus of malformed raw bodies (deep nesting, huge numbers,
wrong content types, truncated JSON, megabytes of spaces, broken UTF-8), and schemathesis
fuzzes the router's and the webhook's own OpenAPI documents (tests/exporter/test_fuzz.py does
the exporter's). Each server must answer every request with a 4xx and go on serving."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import schemathesis
from schemathesis import GenerationMode

from local_stack.pods import free_port
from local_stack.processes import ManagedProcess, Supervisor
from support import fuzz_operation, start_serve_webhook, wait_answering

BIN_DIR = Path(sys.executable).parent
TOKEN = "b" * 40
JSON = "application/json"

# (name, body, content type): each one is wrong in its own way
CORPUS: list[tuple[str, bytes, str]] = [
    ("empty", b"", JSON),
    ("truncated object", b'{"features": {"x1": 0.5, ', JSON),
    ("truncated string", b'{"prediction_id": "stable-', JSON),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, JSON),
    ("deep object nesting", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, JSON),
    ("huge integer", b'{"features": {"x1": ' + b"9" * 5_000 + b"}}", JSON),
    ("huge exponent", b'{"features": {"x1": 1e999999}}', JSON),
    ("NaN literal", b'{"features": {"x1": NaN}}', JSON),
    ("2 MB of spaces", b" " * 2_000_000, JSON),
    ("broken UTF-8", b'{"features": {"x\xff\xfe": 1}}', JSON),
    ("a UTF-8 byte-order mark", b'\xef\xbb\xbf{"features": {}}', JSON),
    ("top-level array", b"[1, 2, 3]", JSON),
    ("top-level string", b'"features"', JSON),
    ("null", b"null", JSON),
    ("user_id of every kind", b'{"user_id": {"nested": [1]}, "features": 7}', JSON),
    ("prediction_id not a string", b'{"prediction_id": ["stable-0"], "actual": 1}', JSON),
    ("form instead of JSON", b"features=1&actual=2", "application/x-www-form-urlencoded"),
    ("plain text", b"hello", "text/plain"),
    (
        "multipart",
        b"--x\r\nContent-Disposition: form-data\r\n\r\n1\r\n--x--",
        "multipart/form-data; boundary=x",
    ),
    ("no content type", b'{"features": {}}', ""),
    ("a content type with a bad charset", b'{"features": {}}', "application/json; charset=klingon"),
]


@dataclass
class Surface:
    name: str
    url: str
    paths: tuple[str, ...]
    process: ManagedProcess
    headers: dict[str, str]


@pytest.fixture(scope="module")
def surfaces(
    tmp_path_factory: pytest.TempPathFactory, start_exporter_module: Callable[..., object]
) -> Iterator[list[Surface]]:
    exporter = start_exporter_module("--variant", "stable")
    workdir = tmp_path_factory.mktemp("bad-input")
    supervisor = Supervisor(workdir / "logs")
    (workdir / "weight").write_text("50")
    router_port = free_port()
    router = supervisor.start(
        "router",
        [
            str(BIN_DIR / "modelmon-router"),
            *("--host", "127.0.0.1", "--port", str(router_port)),
            *("--stable-url", exporter.url, "--canary-url", exporter.url),  # type: ignore[attr-defined]
            *("--weight-file", str(workdir / "weight")),
        ],
    )
    router_url = f"http://127.0.0.1:{router_port}"
    wait_answering(f"{router_url}/readyz", router, "router")
    token_file = workdir / "token"
    token_file.write_text(TOKEN)
    webhook, webhook_url = start_serve_webhook(
        supervisor, token_file, "--state-file", str(workdir / "cooldown.json")
    )
    yield [
        Surface("exporter", exporter.url, ("/predict", "/feedback"), exporter.process, {}),  # type: ignore[attr-defined]
        Surface("router", router_url, ("/predict", "/feedback"), router, {}),
        Surface(
            "webhook", webhook_url, ("/alerts",), webhook, {"Authorization": f"Bearer {TOKEN}"}
        ),
    ]
    supervisor.stop_all()


def test_every_malformed_body_is_refused_with_a_4xx_everywhere(surfaces: list[Surface]) -> None:
    answered: dict[str, dict[int, int]] = {}
    for surface in surfaces:
        counts = answered.setdefault(surface.name, {})
        for path in surface.paths:
            for name, body, content_type in CORPUS:
                headers = {**surface.headers}
                if content_type:
                    headers["Content-Type"] = content_type
                response = requests.post(
                    f"{surface.url}{path}", data=body, headers=headers, timeout=30
                )
                assert 400 <= response.status_code < 500, (
                    f"{surface.name} {path} {name}: {response.status_code} {response.text[:200]}"
                )
                counts[response.status_code] = counts.get(response.status_code, 0) + 1
        assert surface.process.alive(), surface.name
        assert requests.get(f"{surface.url}/healthz", timeout=5).status_code == 200
    sent = sum(n for counts in answered.values() for n in counts.values())
    assert sent == len(CORPUS) * 5, answered


CASES_PER_MODE = 120


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("surface_name", ["router", "webhook"])
def test_the_openapi_document_fuzzed_gets_no_server_error(
    surfaces: list[Surface], surface_name: str, mode: GenerationMode
) -> None:
    [surface] = [s for s in surfaces if s.name == surface_name]
    schema = schemathesis.openapi.from_url(f"{surface.url}/openapi.json")
    operations = [schema[path]["POST"] for path in surface.paths]
    statuses = [
        status
        for operation in operations
        for status in fuzz_operation(operation, mode, surface.url, CASES_PER_MODE, surface.headers)
    ]
    assert len(statuses) >= CASES_PER_MODE * len(operations) * 0.9
    if mode is GenerationMode.NEGATIVE:
        assert any(400 <= s < 500 for s in statuses), "negative cases should be refused"
    assert surface.process.alive()
