"""Locust users for a model-monitoring release, the same traffic as `modelmon-ops load`.

    locust -f loadtest/locustfile.py --host http://127.0.0.1:8080

Each user checks health, predicts (posting the true target to /feedback) and sends a bad input in
the ratio 1 : 10 : 2. DRIFT_LEVEL=low|medium|high shifts the inputs, as `simulate-drift` does.
"""

from __future__ import annotations

import os
import random

from locust import HttpUser, between, task

from modelmon.ops.load import feedback_headers
from modelmon.ops.rows import DRIFT_LEVELS, Rows, bad_row

LEVEL = os.environ.get("DRIFT_LEVEL", "none")
if LEVEL not in DRIFT_LEVELS:
    raise SystemExit(f"DRIFT_LEVEL={LEVEL!r}: expected one of {', '.join(DRIFT_LEVELS)}")
ROWS = Rows.at_level(LEVEL, seed=random.randrange(1_000_000))  # noqa: S311  # nosec B311


class ModelUser(HttpUser):
    wait_time = between(0.5, 1.5)

    @task(1)
    def healthcheck(self) -> None:
        self.client.get("/healthz")

    @task(10)
    def predict_and_feedback(self) -> None:
        row, truth = ROWS.take()
        with self.client.post("/predict", json={"features": row}, catch_response=True) as answer:
            if answer.status_code != 200:
                answer.failure(f"HTTP {answer.status_code}")
                return
            prediction_id = answer.json()["predictions"][0]["prediction_id"]
        self.client.post(
            "/feedback",
            json={"prediction_id": prediction_id, "actual": truth},
            headers=feedback_headers(prediction_id),
        )

    @task(2)
    def bad_input(self) -> None:
        with self.client.post(
            "/predict", json=bad_row(), catch_response=True, name="/predict (bad input)"
        ) as answer:
            if answer.status_code == 422:
                answer.success()
            else:
                answer.failure(f"expected 422 for a bad input, got {answer.status_code}")
