"""The HTTP metrics under prometheus-fastapi-instrumentator's names (v8.0.2, its metrics.default()):
what a dashboard written for it reads, from requests sent through the exporter's whole app."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from modelmon import artifact, contract
from modelmon.api import create_app
from modelmon.config import parse_settings
from modelmon.main import build_service

# The instrumentator's defaults (src/prometheus_fastapi_instrumentator/instrumentation.py,
# latency_lowr_buckets and latency_highr_buckets), as a dashboard's le="..." matchers spell them.
INSTRUMENTATOR_LOWR = ("0.1", "0.5", "1.0", "+Inf")
INSTRUMENTATOR_HIGHR = (
    "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1.0", "1.5", "2.0", "2.5",
    "3.0", "3.5", "4.0", "4.5", "5.0", "7.5", "10.0", "30.0", "60.0", "+Inf",
)  # fmt: skip


def client_of(model_dir, *flags: str) -> TestClient:
    settings = parse_settings(["--model-path", str(model_dir / "model-v1.joblib"), *flags], {})
    service, registry = build_service(settings, artifact.load(settings.model_path))
    return TestClient(create_app(service, registry))


def samples(client: TestClient, name: str) -> list[tuple[dict[str, str], float]]:
    text = client.get("/metrics").text
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


@pytest.fixture
def client(model_dir):
    with client_of(model_dir) as client:
        yield client


def row(client: TestClient) -> dict[str, float]:
    names = client.get("/openapi.json").json()["components"]["schemas"]["Features"]["properties"]
    return dict.fromkeys(names, 0.5)


def test_requests_are_counted_by_method_status_class_and_route(client):
    features = row(client)
    for _ in range(3):
        assert client.post("/predict", json={"features": features}).status_code == 200
    assert client.post("/predict", json={"features": {}}).status_code == 422
    assert client.get("/healthz").status_code == 200
    assert client.get("/no-such-path").status_code == 404
    counted = {
        (labels["method"], labels["status"], labels["handler"]): value
        for labels, value in samples(client, "http_requests_total")
    }
    assert counted[("POST", "2xx", "/predict")] == 3
    assert counted[("POST", "4xx", "/predict")] == 1
    assert counted[("GET", "2xx", "/healthz")] == 1
    assert counted[("GET", "4xx", contract.HTTP_NO_HANDLER)] == 1
    for labels, _ in samples(client, "http_requests_total"):
        assert labels["variant"] == "stable"
        assert labels["user_id"] == "default"


def test_durations_have_the_instrumentators_buckets(client):
    client.post("/predict", json={"features": row(client)})
    lowr = [
        labels["le"]
        for labels, _ in samples(client, "http_request_duration_seconds_bucket")
        if labels["handler"] == "/predict" and labels["method"] == "POST"
    ]
    assert tuple(lowr) == INSTRUMENTATOR_LOWR
    highr = [
        labels["le"] for labels, _ in samples(client, "http_request_duration_highr_seconds_bucket")
    ]
    assert tuple(highr) == INSTRUMENTATOR_HIGHR
    [(_, count)] = [
        (labels, value)
        for labels, value in samples(client, "http_request_duration_seconds_count")
        if labels["handler"] == "/predict"
    ]
    assert count == 1


def test_sizes_are_the_content_length_headers_by_route(client):
    body = b'{"features": {}}'
    client.post("/predict", content=body, headers={"content-type": "application/json"})
    answer = client.post("/predict", content=body, headers={"content-type": "application/json"})
    by_handler = {
        labels["handler"]: value for labels, value in samples(client, "http_request_size_bytes_sum")
    }
    assert by_handler["/predict"] == 2 * len(body)
    responses = {
        labels["handler"]: value
        for labels, value in samples(client, "http_response_size_bytes_sum")
    }
    assert responses["/predict"] == 2 * len(answer.content)


def test_made_up_paths_and_methods_cannot_grow_the_series(client):
    for n in range(200):
        client.get(f"/random/{n}")
        client.request(f"VERB{n}", "/healthz")
    handlers = {labels["handler"] for labels, _ in samples(client, "http_requests_total")}
    methods = {labels["method"] for labels, _ in samples(client, "http_requests_total")}
    assert handlers <= {contract.HTTP_NO_HANDLER, "/healthz", "/metrics"}
    assert methods <= {"GET", contract.HTTP_OTHER_METHOD}


def test_switched_off_they_are_not_exported(model_dir):
    with client_of(model_dir, "--http-metrics", "false") as client:
        client.get("/healthz")
        exposition = client.get("/metrics").text
    assert "http_requests_total" not in exposition
    assert "model_prediction_total" in exposition
