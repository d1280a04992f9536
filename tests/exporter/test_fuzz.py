"""Schema-driven fuzzing of the exporter's API: valid and invalid requests, never a 5xx.

schemathesis turns the exporter's own OpenAPI document into hypothesis strategies, valid
(positive) and schema-violating (negative); hypothesis draws the cases and each one is sent to a
real exporter process.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

CASES_PER_MODE = 260  # x 2 modes x 2 operations: over 1,000 requests


@pytest.fixture(scope="module")
def fuzz_target(start_exporter_module):
    return start_exporter_module("--max-batch-rows", "20", "--max-body-bytes", "65536")


@pytest.fixture(scope="module")
def api_schema(fuzz_target):
    return schemathesis.openapi.from_url(f"{fuzz_target.url}/openapi.json")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("path", ["/predict", "/feedback"])
def test_no_request_gets_a_server_error(api_schema, fuzz_target, path, mode):
    operation = api_schema[path]["POST"]
    statuses: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=CASES_PER_MODE,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def send(case: schemathesis.Case) -> None:
        response = case.call(base_url=fuzz_target.url, timeout=10)
        statuses.append(response.status_code)
        assert response.status_code < 500, (case.body, response.text)

    send()
    assert len(statuses) >= CASES_PER_MODE * 0.9, f"only {len(statuses)} cases were generated"
    if mode is GenerationMode.NEGATIVE:
        assert any(400 <= s < 500 for s in statuses), "negative cases should be refused"
    assert fuzz_target.process.alive()
