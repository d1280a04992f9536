"""The exporter process keeps every labelled prediction: what waits in memory at SIGTERM is
written before it exits."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import requests

from local_stack.pods import free_port
from local_stack.processes import wait_until
from modelmon import contract
from modelmon.contract import DatasetOutcome
from modelmon.dataset import FEATURE_NAMES
from modelmon.feedback_dataset import read_feedback
from support import only_value, parse_samples


def rows_counted(url: str, outcome: DatasetOutcome) -> float:
    samples = parse_samples(requests.get(f"{url}/metrics", timeout=10).text)
    return only_value(samples, contract.FEEDBACK_DATASET_ROWS.name, outcome=str(outcome))


def test_sigterm_writes_every_labelled_prediction_still_in_memory(start_exporter, tmp_path: Path):
    folder = tmp_path / "feedback"
    exporter = start_exporter(
        "--feedback-dataset-url",
        str(folder),
        "--feedback-dataset-flush-seconds",
        "3600",
        "--feedback-dataset-flush-rows",
        "100000",
    )
    rng = np.random.default_rng(7)
    inputs = rng.uniform(0, 1, (300, len(FEATURE_NAMES)))
    sent: dict[str, tuple[np.ndarray, float]] = {}
    for batch in np.array_split(inputs, 10):
        body = {"instances": [dict(zip(FEATURE_NAMES, map(float, r), strict=True)) for r in batch]}
        answer = requests.post(f"{exporter.url}/predict", json=body, timeout=10).json()
        for features, prediction in zip(batch, answer["predictions"], strict=True):
            actual = float(rng.normal())
            sent[prediction["prediction_id"]] = (features, actual)
    for prediction_id, (_, actual) in sent.items():
        answered = requests.post(
            f"{exporter.url}/feedback",
            json={"prediction_id": prediction_id, "actual": actual},
            timeout=10,
        )
        assert answered.status_code == 200, answered.text
    assert rows_counted(exporter.url, DatasetOutcome.WRITTEN) == 0, "nothing written before"
    unlabelled = requests.post(
        f"{exporter.url}/predict", json={"features": dict.fromkeys(FEATURE_NAMES, 0.5)}, timeout=10
    )
    assert unlabelled.status_code == 200

    exporter.process.signal(signal.SIGTERM)
    wait_until(lambda: not exporter.process.alive(), 30, describe="the exporter to exit")

    assert "Traceback" not in exporter.process.log_tail(400)
    delivered = read_feedback(str(folder), FEATURE_NAMES)
    assert len(delivered) == len(sent) == 300, "sent 300 labels; the unlabelled one is not data"
    by_actual = {actual: features for features, actual in sent.values()}
    for features, actual in zip(delivered.features, delivered.actual, strict=True):
        np.testing.assert_array_equal(features, by_actual[float(actual)])
    assert set(delivered.variant) == {str(contract.Variant.STABLE)}
    assert set(delivered.model_version) == {"2.0.0"}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nosuch://bucket/feedback", "feedback dataset nosuch://bucket/feedback: "),
        ("/proc/feedback", "feedback dataset /proc/feedback: "),
    ],
)
def test_a_dataset_that_cannot_be_opened_stops_the_exporter_with_one_line(
    model_dir: Path, url: str, message: str
):
    exporter = Path(sys.executable).parent / "modelmon-exporter"
    ran = subprocess.run(
        [
            str(exporter),
            "--port", str(free_port()),
            "--model-path", str(model_dir / "model-v2.joblib"),
            "--feedback-dataset-url", url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert ran.returncode == 1
    assert message in ran.stderr
    assert "Traceback" not in ran.stderr
