"""The HTTP ceiling, for the exporter benchmark only: FastAPI on the exporter's HTTP stack
(uvicorn, httptools, uvloop) answering a constant, with and without validating the body with
pydantic. No model server on this stack can answer faster than these."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

app = FastAPI()


class Features(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x1: float
    x2: float
    x3: float
    x4: float
    x5: float
    x6: float
    x7: float
    x8: float
    x9: float
    x10: float


class PredictRequest(BaseModel):
    features: Features


ANSWER = {"prediction_id": "constant", "prediction": 0.0}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/constant")
async def constant() -> dict[str, object]:
    return ANSWER


@app.post("/validated")
async def validated(body: PredictRequest) -> dict[str, object]:
    return ANSWER
