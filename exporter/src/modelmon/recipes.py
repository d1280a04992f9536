"""The two shipped model recipes, and how a fitted estimator becomes an artifact."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor

from modelmon import artifact as artifacts
from modelmon.dataset import FEATURE_NAMES

MODEL_NAME = "friedman1-regressor"


@dataclass(frozen=True)
class ModelRecipe:
    version: str
    file_name: str
    algorithm: str
    build: Callable[[int], artifacts.Regressor]


RECIPES: tuple[ModelRecipe, ...] = (
    ModelRecipe(
        version="1.0.0",
        file_name="model-v1.joblib",
        algorithm="RandomForestRegressor",
        build=lambda seed: RandomForestRegressor(
            n_estimators=40, max_depth=12, min_samples_leaf=3, random_state=seed
        ),
    ),
    ModelRecipe(
        version="2.0.0",
        file_name="model-v2.joblib",
        algorithm="HistGradientBoostingRegressor",
        build=lambda seed: HistGradientBoostingRegressor(random_state=seed),
    ),
)


def fit(
    recipe: ModelRecipe,
    seed: int,
    features: NDArray[np.float64],
    target: NDArray[np.float64],
    target_mean: float,
    target_std: float,
    version: str | None = None,
) -> artifacts.ModelArtifact:
    """The recipe's estimator (seeded with `seed`) fitted on the rows, as an artifact whose drift
    reference is those rows."""
    estimator = recipe.build(seed)
    estimator.fit(features, target)  # type: ignore[attr-defined]
    return artifacts.ModelArtifact(
        estimator=estimator,
        name=MODEL_NAME,
        version=version or recipe.version,
        algorithm=recipe.algorithm,
        trained_at=artifacts.today(),
        feature_names=FEATURE_NAMES,
        reference=artifacts.reference_from_training(features, FEATURE_NAMES),
        target_mean=target_mean,
        target_std=target_std,
    )
