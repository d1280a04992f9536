"""Schema-driven fuzzing of the exporter's API: valid and invalid requests, never a 5xx.

schemathesis turns the exporter's own OpenAPI document into hypothesis strategies, valid
(positive) and schema-violating (negative); hypothesis draws the cases and each one is sent to a
real exporter process.
"""

from __future__ import annotations

import pytest
import schemathesis
from schemathesis import GenerationMode

from support import fuzz_operation

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
    statuses = fuzz_operation(operation, mode, fuzz_target.url, CASES_PER_MODE)
    assert len(statuses) >= CASES_PER_MODE * 0.9, f"only {len(statuses)} cases were generated"
    if mode is GenerationMode.NEGATIVE:
        assert any(400 <= s < 500 for s in statuses), "negative cases should be refused"
    assert fuzz_target.process.alive()
