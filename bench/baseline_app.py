"""The users' lab approach, for comparison only: FastAPI + prometheus-fastapi-instrumentator.

It serves the same model artifact with a plain synchronous handler, as the lab material does;
the instrumentator adds its per-request middleware and a /metrics endpoint.
"""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

import numpy as np
import uvicorn
from fastapi import FastAPI
from prometheus_client import Counter
from prometheus_fastapi_instrumentator import Instrumentator
from pydantic import BaseModel

from modelmon import artifact


class PredictRequest(BaseModel):
    features: dict[str, float]


def create_app(model_path: Path) -> FastAPI:
    model = artifact.load(model_path)
    predictions = Counter("model_predictions", "Predictions served.")
    app = FastAPI()

    @app.post("/predict")
    def predict(request: PredictRequest) -> dict[str, object]:
        row = np.array([[request.features[name] for name in model.feature_names]])
        value = float(model.predict(row)[0])
        predictions.inc()
        return {"prediction_id": uuid.uuid4().hex, "prediction": value}

    Instrumentator().instrument(app).expose(app)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-path", type=Path, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(args.model_path), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
