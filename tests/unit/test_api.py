"""The exporter's HTTP API, in process, with the shipped model."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from modelmon import artifact
from modelmon.api import create_app
from modelmon.config import parse_settings
from modelmon.contract import LAB_HEALTH_PATH
from modelmon.main import build_service
from support import only_value, parse_samples

ROW = {f"x{i}": 0.5 for i in range(1, 11)}


@pytest.fixture
def client(model_dir):
    settings = parse_settings(
        [
            "--model-path",
            str(model_dir / "model-v2.joblib"),
            "--variant",
            "canary",
            "--user-id",
            "user07",
            "--max-batch-rows",
            "5",
            "--max-body-bytes",
            "4096",
        ],
        environ={},
    )
    service, registry = build_service(settings, artifact.load(settings.model_path))
    with TestClient(create_app(service, registry)) as test_client:
        yield test_client


def value(client: TestClient, name: str, **labels: str) -> float:
    return only_value(parse_samples(client.get("/metrics").text), name, **labels)


def test_predict_one_row_answers_version_variant_and_an_id(client):
    response = client.post("/predict", json={"features": ROW})
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == "2.0.0"
    assert body["variant"] == "canary"
    [prediction] = body["predictions"]
    assert isinstance(prediction["prediction"], float)
    variant, _, unique = prediction["prediction_id"].partition("-")
    assert variant == "canary"
    assert len(unique) == 32
    assert value(client, "model_prediction_total", variant="canary", user_id="user07") == 1


def test_feedback_updates_quality_counters_and_gauges(client):
    batch = client.post("/predict", json={"instances": [ROW, ROW]}).json()["predictions"]
    for prediction in batch:
        truth = prediction["prediction"] + 0.25
        response = client.post(
            "/feedback", json={"prediction_id": prediction["prediction_id"], "actual": truth}
        )
        assert response.status_code == 200
        assert response.json()["absolute_error"] == pytest.approx(0.25)
    assert value(client, "model_feedback_total") == 2
    assert value(client, "model_feedback_absolute_error_total") == pytest.approx(0.5)
    assert value(client, "model_mae_score") == pytest.approx(0.25)
    assert value(client, "model_accuracy_score") == 1.0


def test_feedback_for_an_unknown_id_is_404_and_counted(client):
    response = client.post("/feedback", json={"prediction_id": "nope", "actual": 1.0})
    assert response.status_code == 404
    assert response.json()["detail"][0]["loc"] == ["body", "prediction_id"]
    assert value(client, "model_feedback_rejected_total", reason="unknown_prediction") == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"features": {**ROW, "x11": 1.0}}, "x11"),
        ({"features": {k: v for k, v in ROW.items() if k != "x3"}}, "x3"),
        ({"features": {**ROW, "x1": "high"}}, "x1"),
        ({"instances": []}, "instances"),
        ({"instances": [ROW] * 6}, "instances"),
        ({"features": ROW, "instances": [ROW]}, "body"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_counted(client, body, field):
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    assert field in response.json()["detail"][0]["loc"]
    assert value(client, "model_prediction_errors_total", reason="bad_input") == 1


def test_non_finite_and_malformed_json_are_refused(client):
    nan_body = json.dumps({"features": {**ROW, "x2": float("nan")}})
    for content in (nan_body, "{not json"):
        response = client.post(
            "/predict", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422
    assert value(client, "model_prediction_errors_total", reason="bad_input") == 2


def test_bodies_over_the_limit_are_refused_before_parsing(client):
    response = client.post(
        "/predict", content=b"x" * 5000, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert value(client, "model_prediction_errors_total", reason="bad_input") == 1


def test_health_readiness_and_info(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get(LAB_HEALTH_PATH).json() == {"status": "ok"}, "the lab's name for it"
    assert client.get("/readyz").json()["model_version"] == "2.0.0"
    info = value(client, "model_version_info", variant="canary")
    assert info == 1.0


def test_the_openapi_document_names_the_models_features_so_a_client_can_build_a_request(
    client,
):
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    request_ref = document["paths"]["/predict"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["$ref"]
    request = schemas[request_ref.rsplit("/", 1)[1]]
    row_ref = request["properties"]["features"]["$ref"]
    assert request["properties"]["instances"]["items"]["$ref"] == row_ref
    assert request["properties"]["instances"]["maxItems"] == 5, "--max-batch-rows"
    row = schemas[row_ref.rsplit("/", 1)[1]]
    assert row["required"] == list(ROW), "the model's features, in its order"
    assert row["additionalProperties"] is False
    assert {spec["type"] for spec in row["properties"].values()} == {"number"}
    # a client that knows only the document: every required feature, a number each
    built = {"features": dict.fromkeys(row["required"], 0.25)}
    answer = client.post("/predict", json=built)
    assert answer.status_code == 200, answer.text
