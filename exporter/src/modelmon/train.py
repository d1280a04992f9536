"""Train the two shipped model versions: v1 (random forest) as stable, v2 (gradient boosting)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.metrics import mean_absolute_error, r2_score

from modelmon import artifact as artifacts
from modelmon.dataset import DEFAULT_SEED, FEATURE_NAMES, make_dataset

TRAIN_ROWS = 5000
HOLDOUT_ROWS = 1000


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


@dataclass(frozen=True)
class HoldoutScore:
    mae: float
    r2: float


def train(
    recipe: ModelRecipe, seed: int = DEFAULT_SEED
) -> tuple[artifacts.ModelArtifact, HoldoutScore]:
    data = make_dataset(TRAIN_ROWS + HOLDOUT_ROWS, seed)
    train_x, holdout_x = data.features[:TRAIN_ROWS], data.features[TRAIN_ROWS:]
    train_y, holdout_y = data.target[:TRAIN_ROWS], data.target[TRAIN_ROWS:]
    estimator = recipe.build(seed)
    estimator.fit(train_x, train_y)  # type: ignore[attr-defined]
    predicted = np.asarray(estimator.predict(holdout_x))
    score = HoldoutScore(
        mae=float(mean_absolute_error(holdout_y, predicted)),
        r2=float(r2_score(holdout_y, predicted)),
    )
    model = artifacts.ModelArtifact(
        estimator=estimator,
        name="friedman1-regressor",
        version=recipe.version,
        algorithm=recipe.algorithm,
        trained_at=artifacts.today(),
        feature_names=FEATURE_NAMES,
        reference=artifacts.reference_from_training(train_x, FEATURE_NAMES),
        target_mean=data.target_mean,
        target_std=data.target_std,
    )
    return model, score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder to write the artifacts to")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--max-mae", type=float, help="fail when a model's holdout MAE is above")
    parser.add_argument("--min-r2", type=float, help="fail when a model's holdout R² is below")
    args = parser.parse_args(argv)
    missed = []
    for recipe in RECIPES:
        model, score = train(recipe, args.seed)
        target = args.out / recipe.file_name
        try:
            artifacts.save(model, target)
        except OSError as exc:
            print(f"error: cannot write {target}: {exc.strerror}", file=sys.stderr)
            return 1
        print(
            f"{target}: {recipe.algorithm} v{recipe.version}, holdout MAE {score.mae:.3f}, "
            f"R² {score.r2:.3f}"
        )
        if args.max_mae is not None and score.mae > args.max_mae:
            missed.append(f"v{recipe.version} MAE {score.mae:.3f} > {args.max_mae}")
        if args.min_r2 is not None and score.r2 < args.min_r2:
            missed.append(f"v{recipe.version} R² {score.r2:.3f} < {args.min_r2}")
    if missed:
        print(f"error: quality bar missed: {'; '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
