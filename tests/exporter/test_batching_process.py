"""Micro-batching in a real exporter process: concurrent clients get their own answers, a full
queue is refused with 503 and counted, and SIGTERM answers every request already taken.

Each test counts what was sent, answered, refused and lost, so "nothing lost" cannot pass for
"nothing sent"."""

from __future__ import annotations

import signal
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import requests
from sklearn.ensemble import RandomForestRegressor

from local_stack.processes import wait_until
from modelmon import artifact
from modelmon.contract import PREDICTIONS, QUEUE_ROWS, PredictionError
from modelmon.recipes import ModelRecipe, fit
from modelmon.training_data import generated_data
from support import only_value, parse_samples

CLIENTS = 64
ROWS_PER_CLIENT = 8
FEATURES = [f"x{i}" for i in range(1, 11)]


def row(client: int, index: int) -> dict[str, float]:
    """A row of its own for every request, so a mixed-up answer cannot match by chance."""
    return {
        name: round(0.01 * client + 0.001 * index + 0.05 * k, 6) for k, name in enumerate(FEATURES)
    }


def metric(url: str, name: str, **labels: str) -> float:
    return only_value(
        parse_samples(requests.get(f"{url}/metrics", timeout=10).text), name, **labels
    )


def test_concurrent_clients_each_get_the_answer_to_their_own_row(start_exporter, model_dir):
    exporter = start_exporter(model="model-v1.joblib")  # the forest: slow enough to queue behind

    def client(number: int) -> list[tuple[dict[str, float], dict[str, Any]]]:
        with requests.Session() as session:
            answers = []
            for index in range(ROWS_PER_CLIENT):
                features = row(number, index)
                response = session.post(f"{exporter.url}/predict", json={"features": features})
                assert response.status_code == 200, response.text
                answers.append((features, response.json()["predictions"][0]))
            return answers

    with ThreadPoolExecutor(CLIENTS) as pool:
        answered = [pair for answers in pool.map(client, range(CLIENTS)) for pair in answers]

    sent = CLIENTS * ROWS_PER_CLIENT
    assert len(answered) == sent
    model = artifact.load(model_dir / "model-v1.joblib")
    matrix = np.array([[features[name] for name in FEATURES] for features, _ in answered])
    expected = model.predict(matrix)
    got = np.array([prediction["prediction"] for _, prediction in answered])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert len({prediction["prediction_id"] for _, prediction in answered}) == sent
    calls = metric(exporter.url, "model_prediction_batch_rows_count")
    assert metric(exporter.url, "model_prediction_batch_rows_sum") == sent
    assert metric(exporter.url, "model_prediction_total") == sent
    assert calls < sent, f"{sent} requests from {CLIENTS} clients took {calls:.0f} model calls"


def test_a_full_queue_answers_503_with_retry_after_and_counts_it(start_exporter):
    exporter = start_exporter("--batching-queue-rows", "1", model="model-v1.joblib")
    batch = {"instances": [row(1, index) for index in range(200)]}

    def client(_: int) -> tuple[int, str | None, int]:
        response = requests.post(f"{exporter.url}/predict", json=batch, timeout=60)
        rows = len(response.json()["predictions"]) if response.status_code == 200 else 0
        return response.status_code, response.headers.get("retry-after"), rows

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS * 2)))

    statuses = Counter(status for status, _, _ in results)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] + statuses[503] == CLIENTS * 2, "every request answered one way or other"
    assert statuses[503] > 0, "a queue of one row must overflow under 64 concurrent clients"
    assert {retry for status, retry, _ in results if status == 503} == {"1"}
    refused = metric(
        exporter.url, "model_prediction_errors_total", reason=PredictionError.OVERLOADED
    )
    assert refused == statuses[503]
    assert metric(exporter.url, "model_prediction_total") == sum(rows for *_, rows in results)
    assert exporter.process.alive()


def taken_and_waiting(url: str, at_least: int) -> bool:
    samples = parse_samples(requests.get(f"{url}/metrics", timeout=10).text)
    waiting = only_value(samples, QUEUE_ROWS.name)
    return waiting > 0 and only_value(samples, PREDICTIONS.name) + waiting >= at_least


def slow_forest(path: Path) -> Path:
    """A forest of 150 unpruned trees: tens of milliseconds per 1,000 rows, so 16 requests
    keep the model busy well after the event loop has read them all, loaded machine or not."""
    recipe = ModelRecipe(
        "0.0.1",
        path.name,
        "RandomForestRegressor",
        lambda seed: RandomForestRegressor(n_estimators=150, random_state=seed),
    )
    data = generated_data()
    features, target = data.data.features[:2000], data.data.target[:2000]
    artifact.save(fit(recipe, 1, features, target, 0.0, 1.0), path)
    return path


def test_sigterm_answers_every_request_already_taken_before_the_process_exits(
    start_exporter, tmp_path: Path
):
    exporter = start_exporter(
        "--batching-max-rows",
        "1",
        "--batching-queue-rows",
        "20000",
        model=str(slow_forest(tmp_path / "slow.joblib")),
    )
    batch = {"instances": [row(2, index) for index in range(1000)]}

    def client(_: int) -> int:
        try:
            return requests.post(f"{exporter.url}/predict", json=batch, timeout=60).status_code
        except requests.ConnectionError:
            return 0  # lost: the connection closed without an answer

    with ThreadPoolExecutor(16) as pool:
        pending = [pool.submit(client, number) for number in range(16)]
        # Every request taken (its rows answered, queued, or, for one request at most, in the
        # model's hands) and some still queued: the signal comes while the queue is served,
        # after the last client's request is in. The queue may drain in a fraction of a
        # second, so it is looked at often.
        rows = len(batch["instances"])
        wait_until(
            lambda: taken_and_waiting(exporter.url, 16 * rows - rows),
            30,
            interval=0.01,
            describe="every request taken, some of its rows still queued",
        )
        exporter.process.signal(signal.SIGTERM)
        statuses = Counter(future.result() for future in pending)

    assert statuses == {200: 16}, f"sent 16, answered {statuses}"
    wait_until(lambda: not exporter.process.alive(), 30, describe="the exporter to exit")
    # uvicorn finishes its graceful shutdown, then re-raises the signal it caught
    code = exporter.process.popen.returncode
    assert code == -signal.SIGTERM, f"exit code {code}: {exporter.process.log_tail()}"
    assert "Traceback" not in exporter.process.log_tail(400)
