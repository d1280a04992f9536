"""The feedback dataset: what is appended is what is read back, and a storage outage loses
nothing until the buffer is full, then counts every row it drops."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pytest

from modelmon.dataset import FEATURE_NAMES
from modelmon.feedback_dataset import (
    PARTIAL_PREFIX,
    FeedbackDataset,
    FeedbackDatasetError,
    LabelledPrediction,
    read_feedback,
)
from support import eventually

T0 = 1_796_000_000.0


def labelled(index: int, rng: np.random.Generator) -> LabelledPrediction:
    row = rng.uniform(0, 1, len(FEATURE_NAMES))
    return LabelledPrediction(
        prediction_id=f"stable-{index:032x}",
        variant="stable" if index % 2 else "canary",
        model_version="1.0.0",
        predicted_at=T0 + index,
        labelled_at=T0 + index + 0.5,
        features=row.tobytes(),
        prediction=float(index),
        actual=float(index) + 0.25,
    )


class Counts:
    def __init__(self) -> None:
        self.written = self.dropped = self.failed = 0

    def dataset(self, url: str, **limits: int) -> FeedbackDataset:
        def written(rows: int) -> None:
            self.written += rows

        def dropped(rows: int) -> None:
            self.dropped += rows

        def failed() -> None:
            self.failed += 1

        return FeedbackDataset(
            url,
            FEATURE_NAMES,
            writer="test",
            flush_seconds=3600,
            on_written=written,
            on_dropped=dropped,
            on_failed=failed,
            **limits,
        )


@pytest.fixture
def memory_url() -> Iterator[str]:
    """An fsspec in-memory store: the object-store path (no rename) of the writer."""
    url = f"memory://feedback-{uuid.uuid4().hex}"
    yield url
    fsspec.filesystem("memory").rm(url.removeprefix("memory://"), recursive=True)


def test_every_appended_row_reads_back_as_written(tmp_path: Path):
    rng = np.random.default_rng(1)
    records = [labelled(i, rng) for i in range(250)]
    counts = Counts()
    dataset = counts.dataset(str(tmp_path / "feedback"), flush_rows=100)
    dataset.start()
    for record in reversed(records):  # read back oldest label first, whatever the order written
        dataset.append(record)
    dataset.close()

    read = read_feedback(str(tmp_path / "feedback"), FEATURE_NAMES)
    assert len(read) == counts.written == 250
    assert counts.dropped == counts.failed == 0
    expected = np.array([np.frombuffer(r.features) for r in records])
    np.testing.assert_array_equal(read.features, expected)
    np.testing.assert_array_equal(read.actual, [r.actual for r in records])
    np.testing.assert_array_equal(read.prediction, [r.prediction for r in records])
    np.testing.assert_allclose(read.labelled_at, [r.labelled_at for r in records])
    assert read.variant[:2] == ("canary", "stable")
    files = list((tmp_path / "feedback").rglob("*.parquet"))
    assert files, "no Parquet file written"
    assert all(f.parent.name.startswith("date=") for f in files)
    assert not [f for f in files if f.name.startswith(PARTIAL_PREFIX)]


def test_a_full_batch_is_written_without_waiting_for_the_interval(tmp_path: Path):
    rng = np.random.default_rng(2)
    counts = Counts()
    dataset = counts.dataset(str(tmp_path), flush_rows=10)
    dataset.start()
    for index in range(10):
        dataset.append(labelled(index, rng))
    eventually(lambda: counts.written, lambda rows: rows == 10, 10, "10 rows written")
    assert len(read_feedback(str(tmp_path), FEATURE_NAMES)) == 10
    dataset.close()


def test_an_outage_keeps_the_rows_then_writes_them_and_counts_what_the_bound_dropped(
    memory_url: str, monkeypatch: pytest.MonkeyPatch
):
    rng = np.random.default_rng(3)
    counts = Counts()
    dataset = counts.dataset(memory_url, flush_rows=10_000, max_buffered_rows=300)
    dataset.start()
    filesystem = fsspec.filesystem("memory")
    healthy_open = filesystem.open

    def refuse(*_: object, **__: object) -> None:
        raise OSError("storage unavailable")

    monkeypatch.setattr(filesystem, "open", refuse)
    sent = 0
    for index in range(200):
        dataset.append(labelled(index, rng))
        sent += 1
    assert dataset.flush() == 0
    for index in range(200, 500):
        dataset.append(labelled(index, rng))
        sent += 1
    assert dataset.flush() == 0
    assert counts.failed == 2
    monkeypatch.setattr(filesystem, "open", healthy_open)
    dataset.close()

    delivered = read_feedback(memory_url, FEATURE_NAMES)
    assert sent == 500
    assert counts.dropped == 200, "the buffer holds 300: the 200 oldest go"
    assert len(delivered) == counts.written == sent - counts.dropped
    np.testing.assert_array_equal(delivered.prediction, np.arange(200, 500, dtype=float))


def test_reading_a_missing_or_foreign_dataset_says_what_is_wrong(tmp_path: Path):
    with pytest.raises(FeedbackDatasetError, match="no such dataset"):
        read_feedback(str(tmp_path / "absent"), FEATURE_NAMES)
    dataset = FeedbackDataset(str(tmp_path), ("a", "b"), writer="test")
    dataset.start()
    dataset.append(
        LabelledPrediction("stable-0", "stable", "1", T0, T0, np.zeros(2).tobytes(), 0.0, 0.0)
    )
    dataset.close()
    with pytest.raises(FeedbackDatasetError, match="no column for feature"):
        read_feedback(str(tmp_path), FEATURE_NAMES)
