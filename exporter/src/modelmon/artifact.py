"""Model artifacts: a fitted estimator plus what serving needs to know about it.

An artifact is one joblib file holding a dict with plain values beside the estimator, so a user
can bring their own model by writing the same keys. Loading a joblib file runs pickle: load only
artifacts you built or trust, as with any pickled scikit-learn model.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import joblib
import numpy as np
from numpy.typing import NDArray

REFERENCE_BINS = 10
FORMAT_VERSION = 1


class Regressor(Protocol):
    def predict(self, features: Any) -> NDArray[np.float64]: ...


class ArtifactError(Exception):
    """The artifact file is missing, unreadable or lacks a required key."""


@dataclass(frozen=True)
class FeatureReference:
    """Bin edges and the training share of each bin, for drift scores."""

    edges: tuple[float, ...]
    expected_share: tuple[float, ...]


@dataclass(frozen=True)
class ModelArtifact:
    estimator: Regressor
    name: str
    version: str
    algorithm: str
    trained_at: str
    feature_names: tuple[str, ...]
    reference: dict[str, FeatureReference]
    target_mean: float
    target_std: float

    def predict(self, rows: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(self.estimator.predict(rows), dtype=np.float64)


def reference_from_training(
    features: NDArray[np.float64], feature_names: tuple[str, ...]
) -> dict[str, FeatureReference]:
    """Decile edges of each training feature; each bin then holds about a tenth of the rows."""
    reference: dict[str, FeatureReference] = {}
    quantiles = np.linspace(0.0, 1.0, REFERENCE_BINS + 1)[1:-1]
    for column, name in enumerate(feature_names):
        edges = np.unique(np.quantile(features[:, column], quantiles))
        counts = np.bincount(
            np.searchsorted(edges, features[:, column], side="right"), minlength=len(edges) + 1
        )
        reference[name] = FeatureReference(
            edges=tuple(float(e) for e in edges),
            expected_share=tuple(float(c) for c in counts / counts.sum()),
        )
    return reference


def save(artifact: ModelArtifact, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": FORMAT_VERSION,
        "estimator": artifact.estimator,
        "name": artifact.name,
        "version": artifact.version,
        "algorithm": artifact.algorithm,
        "trained_at": artifact.trained_at,
        "feature_names": list(artifact.feature_names),
        "reference": {
            feature: {"edges": list(ref.edges), "expected_share": list(ref.expected_share)}
            for feature, ref in artifact.reference.items()
        },
        "target_mean": artifact.target_mean,
        "target_std": artifact.target_std,
    }
    temporary = path.with_suffix(path.suffix + ".tmp")
    joblib.dump(payload, temporary)
    temporary.replace(path)


def load(path: Path) -> ModelArtifact:
    if not path.is_file():
        raise ArtifactError(f"model artifact not found: {path}")
    try:
        payload = joblib.load(path)
    except Exception as exc:  # joblib raises whatever unpickling raised
        raise ArtifactError(f"cannot read model artifact {path}: {exc}") from exc
    if not isinstance(payload, dict):
        raise ArtifactError(f"model artifact {path} is not a dict of the documented keys")
    try:
        reference = {
            feature: FeatureReference(tuple(ref["edges"]), tuple(ref["expected_share"]))
            for feature, ref in payload["reference"].items()
        }
        return ModelArtifact(
            estimator=payload["estimator"],
            name=str(payload["name"]),
            version=str(payload["version"]),
            algorithm=str(payload["algorithm"]),
            trained_at=str(payload["trained_at"]),
            feature_names=tuple(payload["feature_names"]),
            reference=reference,
            target_mean=float(payload["target_mean"]),
            target_std=float(payload["target_std"]),
        )
    except KeyError as exc:
        raise ArtifactError(f"model artifact {path} lacks the key {exc.args[0]!r}") from exc


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()
