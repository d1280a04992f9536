"""Training data sets: generated from a seed, or prepared in a folder for a later training run.

A prepared data set keeps the arrays in one .npz (no pickles), described by a JSON manifest that
is written last, so a folder with a manifest holds a complete data set.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from modelmon.dataset import DEFAULT_SEED, FEATURE_NAMES, Dataset, make_dataset

TRAIN_ROWS = 5000
HOLDOUT_ROWS = 1000
DATA_FILE = "dataset.npz"
MANIFEST_FILE = "dataset.json"
DATA_FORMAT_VERSION = 1
MIN_HOLDOUT_ROWS = 2  # R² needs two distinct targets


@dataclass(frozen=True)
class PreparedData:
    """A data set split into training rows (the first `train_rows`) and holdout rows."""

    data: Dataset
    train_rows: int
    seed: int


class DataError(Exception):
    """A prepared data set folder is missing, unreadable or inconsistent."""


def generated_data(seed: int = DEFAULT_SEED) -> PreparedData:
    """The data set the shipped models are trained on: Friedman #1 from `seed`."""
    return PreparedData(make_dataset(TRAIN_ROWS + HOLDOUT_ROWS, seed), TRAIN_ROWS, seed)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare_data(directory: Path, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Write the training data set to `directory`; returns the manifest. Raises OSError."""
    prepared = generated_data(seed)
    data = prepared.data
    directory.mkdir(parents=True, exist_ok=True)
    data_path = directory / DATA_FILE
    partial = directory / (DATA_FILE + ".partial")
    with partial.open("wb") as stream:
        np.savez(stream, features=data.features, target=data.target)
    os.replace(partial, data_path)
    rows = len(data.target)
    manifest: dict[str, Any] = {
        "format_version": DATA_FORMAT_VERSION,
        "generator": "sklearn.datasets.make_friedman1",
        "seed": seed,
        "rows": rows,
        "train_rows": prepared.train_rows,
        "holdout_rows": rows - prepared.train_rows,
        "feature_names": list(FEATURE_NAMES),
        "target": "standardised: (raw - target_mean) / target_std",
        "target_mean": data.target_mean,
        "target_std": data.target_std,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "files": {DATA_FILE: {"sha256": _sha256(data_path), "bytes": data_path.stat().st_size}},
    }
    manifest_path = directory / MANIFEST_FILE
    partial = directory / (MANIFEST_FILE + ".partial")
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(partial, manifest_path)
    return manifest


def _manifest(directory: Path) -> dict[str, Any]:
    if not directory.is_dir():
        raise DataError(f"prepared data folder {directory} does not exist")
    path = directory / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(
            f"{path} not found: write the data set first with modelmon-train --prepare-data"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    except ValueError as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise DataError(f"{path} is not a JSON object")
    if manifest.get("format_version") != DATA_FORMAT_VERSION:
        raise DataError(
            f"{path}: format_version {manifest.get('format_version')!r}, "
            f"expected {DATA_FORMAT_VERSION}"
        )
    return manifest


def _field(
    manifest: dict[str, Any], key: str, kind: type[Any] | tuple[type[Any], ...], path: Path
) -> Any:
    value = manifest.get(key)
    # bool is an int to Python, never a count, a seed or a mean here
    if isinstance(value, bool) or not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise DataError(f"{path}: {key!r} is missing or not a {names}")
    return value


def _arrays(path: Path, expected_sha256: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    try:
        actual = _sha256(path)
    except FileNotFoundError:
        raise DataError(f"{path} not found (the manifest names it)") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if actual != expected_sha256:
        raise DataError(f"{path} is corrupt: its sha256 differs from the manifest's")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            features = np.asarray(arrays["features"], dtype=np.float64)
            target = np.asarray(arrays["target"], dtype=np.float64)
    except KeyError as exc:
        raise DataError(f"{path} lacks the array {exc.args[0]!r}") from exc
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    return features, target


def load_prepared(directory: Path) -> PreparedData:
    """The data set that `prepare_data` wrote, checked against its manifest. Raises DataError."""
    manifest = _manifest(directory)
    manifest_path = directory / MANIFEST_FILE
    rows = _field(manifest, "rows", int, manifest_path)
    train_rows = _field(manifest, "train_rows", int, manifest_path)
    seed = _field(manifest, "seed", int, manifest_path)
    target_mean = float(_field(manifest, "target_mean", (int, float), manifest_path))
    target_std = float(_field(manifest, "target_std", (int, float), manifest_path))
    names = tuple(_field(manifest, "feature_names", list, manifest_path))
    files = _field(manifest, "files", dict, manifest_path)
    entry = files.get(DATA_FILE)
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise DataError(f"{manifest_path}: no sha256 for {DATA_FILE}")
    if names != FEATURE_NAMES:
        raise DataError(
            f"{manifest_path}: features {', '.join(map(str, names))} are not the served "
            f"model's {', '.join(FEATURE_NAMES)}"
        )
    if not 1 <= train_rows <= rows - MIN_HOLDOUT_ROWS:
        raise DataError(
            f"{manifest_path}: train_rows {train_rows} leaves no holdout of "
            f"{MIN_HOLDOUT_ROWS} or more among {rows} rows"
        )
    if not (math.isfinite(target_mean) and math.isfinite(target_std) and target_std > 0):
        raise DataError(f"{manifest_path}: target_mean/target_std are not usable numbers")
    features, target = _arrays(directory / DATA_FILE, entry["sha256"])
    if features.shape != (rows, len(FEATURE_NAMES)) or target.shape != (rows,):
        raise DataError(
            f"{directory / DATA_FILE}: shapes {features.shape} and {target.shape} do not match "
            f"the manifest's {rows} rows of {len(FEATURE_NAMES)} features"
        )
    if not (np.isfinite(features).all() and np.isfinite(target).all()):
        raise DataError(f"{directory / DATA_FILE}: holds NaN or infinite values")
    return PreparedData(Dataset(features, target, target_mean, target_std), train_rows, seed)
