"""The exporter as a real process: quality sums across replicas, drift, promtool."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
from sklearn.metrics import mean_absolute_error, r2_score

from local_stack.toolchain import require
from modelmon import contract
from modelmon.dataset import FEATURE_NAMES, make_dataset
from support import only_value, parse_samples


@dataclass(frozen=True)
class QualitySums:
    """The sufficient statistics that the feedback counters export.

    Sums from several processes (or the increase of the counters over a PromQL window) add up,
    and the scores computed from the totals equal the scores over all the pairs at once.
    """

    n: float
    absolute_error: float
    squared_error: float
    target: float
    target_squared: float

    def __add__(self, other: QualitySums) -> QualitySums:
        return QualitySums(
            self.n + other.n,
            self.absolute_error + other.absolute_error,
            self.squared_error + other.squared_error,
            self.target + other.target,
            self.target_squared + other.target_squared,
        )

    @property
    def mae(self) -> float:
        return self.absolute_error / self.n if self.n else math.nan

    @property
    def r2(self) -> float:
        """1 − SSE/SST with SST = Σy² − (Σy)²/n."""
        if self.n < 2:
            return math.nan
        total = self.target_squared - self.target * self.target / self.n
        return 1.0 - self.squared_error / total if total > 0 else math.nan


def rows_of(matrix: np.ndarray) -> list[dict[str, float]]:
    return [dict(zip(FEATURE_NAMES, map(float, row), strict=True)) for row in matrix]


def predict_and_feed_back(url: str, rows: list[dict[str, float]], truth: np.ndarray) -> np.ndarray:
    predictions = requests.post(f"{url}/predict", json={"instances": rows}, timeout=10).json()
    values = []
    for item, actual in zip(predictions["predictions"], truth, strict=True):
        response = requests.post(
            f"{url}/feedback",
            json={"prediction_id": item["prediction_id"], "actual": float(actual)},
            timeout=5,
        )
        response.raise_for_status()
        values.append(item["prediction"])
    return np.array(values)


def quality_sums(url: str) -> QualitySums:
    samples = parse_samples(requests.get(f"{url}/metrics", timeout=5).text)
    return QualitySums(
        n=only_value(samples, contract.FEEDBACK.name),
        absolute_error=only_value(samples, contract.FEEDBACK_ABSOLUTE_ERROR.name),
        squared_error=only_value(samples, contract.FEEDBACK_SQUARED_ERROR.name),
        target=only_value(samples, contract.FEEDBACK_TARGET_POSITIVE.name)
        - only_value(samples, contract.FEEDBACK_TARGET_NEGATIVE.name),
        target_squared=only_value(samples, contract.FEEDBACK_TARGET_SQUARED.name),
    )


def test_counters_summed_over_two_replicas_equal_one_process_and_sklearn(start_exporter):
    data = make_dataset(600, seed=11)
    rows, truth = rows_of(data.features), data.target
    replica_a, replica_b, single = (start_exporter() for _ in range(3))
    predicted = np.concatenate(
        [
            predict_and_feed_back(replica_a.url, rows[:250], truth[:250]),
            predict_and_feed_back(replica_b.url, rows[250:], truth[250:]),
        ]
    )
    predict_and_feed_back(single.url, rows, truth)
    summed = quality_sums(replica_a.url) + quality_sums(replica_b.url)
    alone = quality_sums(single.url)
    assert summed.n == alone.n == 600
    assert summed.mae == pytest.approx(alone.mae, rel=1e-9)
    assert summed.r2 == pytest.approx(alone.r2, rel=1e-9)
    assert summed.mae == pytest.approx(mean_absolute_error(truth, predicted), rel=1e-9)
    assert summed.r2 == pytest.approx(r2_score(truth, predicted), rel=1e-9)


def test_drift_is_near_zero_on_reference_data_and_high_when_shifted(start_exporter):
    exporter = start_exporter("--drift-window", "1000")
    fresh = make_dataset(1000, seed=99).features
    requests.post(f"{exporter.url}/predict", json={"instances": rows_of(fresh)}, timeout=10)
    samples = parse_samples(requests.get(f"{exporter.url}/metrics", timeout=5).text)
    assert only_value(samples, "model_drift_score") < 0.05
    shifted = fresh.copy()
    shifted[:, 3] += 0.4
    requests.post(f"{exporter.url}/predict", json={"instances": rows_of(shifted)}, timeout=10)
    samples = parse_samples(requests.get(f"{exporter.url}/metrics", timeout=5).text)
    assert only_value(samples, "model_feature_drift_score", feature="x4") > 1.0
    assert only_value(samples, "model_feature_drift_score", feature="x1") < 0.05
    assert only_value(samples, "model_drift_score") > 1.0


def test_promtool_check_metrics_finds_nothing_on_a_real_scrape(start_exporter):
    exporter = start_exporter("--user-id", "user07")
    data = make_dataset(50, seed=5)
    predict_and_feed_back(exporter.url, rows_of(data.features), data.target)
    requests.post(f"{exporter.url}/predict", json={"features": {"x1": "bad"}}, timeout=5)
    exposition = requests.get(f"{exporter.url}/metrics", timeout=5).text
    assert 'model_prediction_errors_total{model_version="2.0.0",reason="bad_input"' in exposition
    result = subprocess.run(
        [str(require("promtool")), "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
    assert result.stderr.strip() == ""


def test_training_enforces_the_quality_bar(tmp_path):
    trainer = str(Path(sys.executable).parent / "modelmon-train")
    passed = subprocess.run(
        [trainer, "--out", str(tmp_path / "ok"), "--max-mae", "0.35", "--min-r2", "0.85"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert passed.returncode == 0, passed.stderr
    assert (tmp_path / "ok" / "model-v1.joblib").is_file()
    missed = subprocess.run(
        [trainer, "--out", str(tmp_path / "bar"), "--min-r2", "0.99"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missed.returncode == 1
    assert missed.stderr.startswith("error: quality bar missed: v1.0.0 R² 0.9")
