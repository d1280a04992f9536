"""Labelled predictions appended to a Parquet dataset, so retraining learns what production saw.

Rows are buffered in memory and written as one Parquet file per flush, through fsspec: a local
folder (the chart mounts a PersistentVolumeClaim there) or any fsspec URL (s3://, gs://, ...).
Files are laid out Hive-style by day, `<root>/date=YYYY-MM-DD/part-<writer>-<ms>-<n>.parquet`,
each named by its writer so that replicas sharing the dataset never collide.

Memory is bounded: while storage refuses writes, rows wait up to `max_buffered_rows` (and as many
again while a write is under way); past that the oldest are dropped and counted. `close()` writes
what is buffered, as the exporter drains.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from numpy.typing import NDArray

from modelmon.feedback_store import LabelledPrediction

log = logging.getLogger("modelmon.feedback_dataset")

PARTITION = "date"
# Readers skip names that start with "_" or "." (pyarrow.dataset's default), so a file being
# written under its temporary name is never read half-written.
PARTIAL_PREFIX = "_partial-"


@dataclass(frozen=True)
class FeedbackRows:
    """What the dataset holds, oldest label first."""

    features: NDArray[np.float64]
    prediction: NDArray[np.float64]
    actual: NDArray[np.float64]
    labelled_at: NDArray[np.float64]  # Unix seconds
    variant: tuple[str, ...]
    model_version: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.actual)

    def take(self, rows: slice) -> FeedbackRows:
        return FeedbackRows(
            self.features[rows],
            self.prediction[rows],
            self.actual[rows],
            self.labelled_at[rows],
            self.variant[rows],
            self.model_version[rows],
        )


class FeedbackDatasetError(Exception):
    """The dataset cannot be read: missing, unreadable, or written for other features."""


def schema(feature_names: Sequence[str]) -> pa.Schema:
    timestamp = pa.timestamp("ms", tz="UTC")
    return pa.schema(
        [
            ("prediction_id", pa.string()),
            ("variant", pa.string()),
            ("model_version", pa.string()),
            ("predicted_at", timestamp),
            ("labelled_at", timestamp),
            *((name, pa.float64()) for name in feature_names),
            ("prediction", pa.float64()),
            ("actual", pa.float64()),
        ]
    )


def to_table(records: Sequence[LabelledPrediction], feature_names: Sequence[str]) -> pa.Table:
    width = len(feature_names)
    matrix = np.frombuffer(b"".join(r.features for r in records), dtype=np.float64)
    matrix = matrix.reshape(len(records), width)
    columns: dict[str, Any] = {
        "prediction_id": [r.prediction_id for r in records],
        "variant": [r.variant for r in records],
        "model_version": [r.model_version for r in records],
        "predicted_at": [_milliseconds(r.predicted_at) for r in records],
        "labelled_at": [_milliseconds(r.labelled_at) for r in records],
        **{name: matrix[:, i] for i, name in enumerate(feature_names)},
        "prediction": [r.prediction for r in records],
        "actual": [r.actual for r in records],
    }
    return pa.Table.from_pydict(columns, schema=schema(feature_names))


def _milliseconds(unix_seconds: float) -> int:
    return round(unix_seconds * 1000)


class FeedbackDataset:
    """Appends labelled predictions; a background thread writes them every `flush_seconds` or
    as soon as `flush_rows` wait."""

    def __init__(
        self,
        url: str,
        feature_names: Sequence[str],
        writer: str,
        *,
        flush_rows: int = 1000,
        flush_seconds: float = 60.0,
        max_buffered_rows: int = 50_000,
        on_written: Callable[[int], None] = lambda _rows: None,
        on_dropped: Callable[[int], None] = lambda _rows: None,
        on_failed: Callable[[], None] = lambda: None,
    ) -> None:
        self.url = url
        self._fs, self._root = fsspec.core.url_to_fs(url)
        self._local = "file" in _protocols(self._fs)
        self._feature_names = tuple(feature_names)
        self._writer = writer
        self._flush_rows = flush_rows
        self._flush_seconds = flush_seconds
        self._buffer: deque[LabelledPrediction] = deque()
        self._max_buffered = max_buffered_rows
        self._on_written, self._on_dropped, self._on_failed = on_written, on_dropped, on_failed
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._files = 0
        self._thread = threading.Thread(target=self._run, name="feedback-dataset", daemon=True)

    def start(self) -> None:
        self._fs.makedirs(self._root, exist_ok=True)
        self._thread.start()

    def append(self, record: LabelledPrediction) -> None:
        with self._lock:
            self._buffer.append(record)
            dropped = self._trim()
            waiting = len(self._buffer)
        if dropped:
            self._on_dropped(dropped)
        if waiting >= self._flush_rows:
            self._wake.set()

    def buffered(self) -> int:
        with self._lock:
            return len(self._buffer)

    def flush(self) -> int:
        """Writes what is buffered as one file; the rows written (0 when storage refused them:
        they go back to the buffer for the next flush)."""
        with self._flushing:
            with self._lock:
                records, self._buffer = self._buffer, deque()
            if not records:
                return 0
            try:
                self._write(to_table(records, self._feature_names), records[0].labelled_at)
            except Exception:  # any storage failure: keep the rows, say so, try again later
                log.exception(
                    "writing %d rows to %s failed; kept for the next flush", len(records), self.url
                )
                with self._lock:
                    records.extend(self._buffer)
                    self._buffer = records
                    dropped = self._trim()
                self._on_failed()
                if dropped:
                    self._on_dropped(dropped)
                return 0
            self._on_written(len(records))
            return len(records)

    def _trim(self) -> int:
        """Drops the oldest rows past the bound (the lock held); how many."""
        overflow = max(len(self._buffer) - self._max_buffered, 0)
        for _ in range(overflow):
            self._buffer.popleft()
        return overflow

    def close(self) -> None:
        """Stops the writer and writes what is left (the exporter calls it as it drains)."""
        self._closed.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        self.flush()

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self._flush_seconds)
            self._wake.clear()
            if not self._closed.is_set():
                self.flush()

    def _write(self, table: pa.Table, first_label: float) -> None:
        day = datetime.fromtimestamp(first_label, UTC).strftime("%Y-%m-%d")
        self._files += 1
        name = f"part-{self._writer}-{_milliseconds(time.time())}-{self._files}.parquet"
        folder = f"{self._root}/{PARTITION}={day}"
        self._fs.makedirs(folder, exist_ok=True)
        final = f"{folder}/{name}"
        # Object stores publish a file whole when it is closed; a local folder needs a rename.
        target = f"{folder}/{PARTIAL_PREFIX}{name}" if self._local else final
        with self._fs.open(target, "wb") as file:
            pq.write_table(table, file)
        if target != final:
            self._fs.mv(target, final)


def _protocols(filesystem: Any) -> tuple[str, ...]:
    protocol = filesystem.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def read_feedback(url: str, feature_names: Sequence[str]) -> FeedbackRows:
    """Every labelled prediction in the dataset at `url`, oldest label first."""
    try:
        filesystem, root = fsspec.core.url_to_fs(url)
        if not filesystem.exists(root):
            raise FeedbackDatasetError(f"{url}: no such dataset")
        dataset = pads.dataset(root, filesystem=filesystem, format="parquet", partitioning="hive")
        missing = [name for name in feature_names if name not in dataset.schema.names]
        if missing:
            raise FeedbackDatasetError(
                f"{url}: the dataset has no column for feature(s) {', '.join(missing)}"
            )
        table = dataset.to_table(
            columns=[
                *feature_names,
                "prediction",
                "actual",
                "labelled_at",
                "variant",
                "model_version",
            ]
        ).sort_by("labelled_at")
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise FeedbackDatasetError(f"{url}: cannot read the feedback dataset: {exc}") from exc
    features = (
        np.column_stack([table.column(name).to_numpy() for name in feature_names]).astype(
            np.float64
        )
        if len(table)
        else np.empty((0, len(feature_names)))
    )
    labelled = table.column("labelled_at").cast(pa.int64()).to_numpy() / 1000.0
    return FeedbackRows(
        features=features,
        prediction=table.column("prediction").to_numpy().astype(np.float64),
        actual=table.column("actual").to_numpy().astype(np.float64),
        labelled_at=labelled.astype(np.float64),
        variant=tuple(table.column("variant").to_pylist()),
        model_version=tuple(table.column("model_version").to_pylist()),
    )
