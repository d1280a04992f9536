"""The router's OpenAPI document: what it forwards, and what it answers on its own."""

from __future__ import annotations

from typing import Any

from modelmon import __version__
from modelmon.contract import LAB_HEALTH_PATH, PREDICTION_ID_MAX_LENGTH, VARIANT_HEADER

ERROR = {
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        }
    },
}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema or ERROR}},
    }


def _forwarded(summary: str, body: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {
                "200": {
                    "description": f"The exporter's answer; {VARIANT_HEADER} names the variant",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "413": _answer("Request body over the size limit"),
                "422": _answer("Invalid input; `loc` names the field"),
                "503": _answer("No variant answered"),
                **extra,
            },
        }
    }


def _status(summary: str) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": {"200": {"description": "OK"}}}}


def document() -> dict[str, Any]:
    predict = {
        "type": "object",
        "description": "The exporter's prediction request; a `user_id` field, when present, picks "
        "the user's sticky cohort and is removed before forwarding (the X-User-ID header too).",
    }
    feedback = {
        "type": "object",
        "required": ["prediction_id", "actual"],
        "properties": {
            "prediction_id": {"type": "string", "maxLength": PREDICTION_ID_MAX_LENGTH},
            "actual": {"type": "number"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "modelmon router",
            "version": __version__,
            "description": "Sends each prediction to the stable or the canary exporter by the "
            "canary weight, and feedback to the variant that made the prediction.",
        },
        "paths": {
            "/predict": _forwarded("A prediction, from stable or canary", predict, {}),
            "/feedback": _forwarded(
                "Ground truth, to the variant that made the prediction",
                feedback,
                {"404": _answer("Unknown or expired prediction id")},
            ),
            "/healthz": _status("The router runs"),
            LAB_HEALTH_PATH: _status("The router runs (the lab's name for /healthz)"),
            "/readyz": _status("The router takes traffic; says the weight in force"),
        },
    }
