"""Train the two shipped model versions: v1 (random forest) as stable, v2 (gradient boosting).

    modelmon-train --out MODELS                 generate the data set from --seed and train
    modelmon-train --prepare-data DATA          only write the data set (DATA/dataset.npz and the
                                                DATA/dataset.json manifest), for a later run
    modelmon-train --data DATA --out MODELS     train from a data set written by --prepare-data

Exit codes: 0 done; 1 a model missed the quality bar (--max-mae, --min-r2) or a file could not
be written; 2 a usage error or a prepared data set that is missing, corrupt or inconsistent.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.metrics import mean_absolute_error, r2_score

from modelmon import __version__
from modelmon import artifact as artifacts
from modelmon.dataset import DEFAULT_SEED, FEATURE_NAMES
from modelmon.training_data import (
    DATA_FILE,
    MANIFEST_FILE,
    DataError,
    PreparedData,
    generated_data,
    load_prepared,
    prepare_data,
)


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
    recipe: ModelRecipe, seed: int = DEFAULT_SEED, prepared: PreparedData | None = None
) -> tuple[artifacts.ModelArtifact, HoldoutScore]:
    """Fit one recipe (estimator seeded with `seed`) on the prepared data set, or on the
    generated one when none is given; score it on the holdout rows."""
    if prepared is None:
        prepared = generated_data(seed)
    data, split = prepared.data, prepared.train_rows
    train_x, holdout_x = data.features[:split], data.features[split:]
    train_y, holdout_y = data.target[:split], data.target[split:]
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelmon-train",
        description=(__doc__ or "").split("\n\n")[0],
        epilog="Exit codes: 0 done, 1 quality bar missed or a write failed, 2 usage or data error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--out", type=Path, help="folder to write the artifacts to")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--prepare-data",
        type=Path,
        metavar="DIR",
        help=f"only write the training data set ({DATA_FILE} and {MANIFEST_FILE}) to DIR",
    )
    source.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="train from the data set that --prepare-data wrote to DIR, not a generated one",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"seed of the generated data set and of the estimators (default {DEFAULT_SEED})",
    )
    parser.add_argument("--max-mae", type=float, help="fail when a model's holdout MAE is above")
    parser.add_argument("--min-r2", type=float, help="fail when a model's holdout R² is below")
    return parser


def run_prepare(directory: Path, seed: int) -> int:
    try:
        manifest = prepare_data(directory, seed)
    except OSError as exc:
        print(f"error: cannot write the data set to {directory}: {exc.strerror}", file=sys.stderr)
        return 1
    print(
        f"{directory / DATA_FILE}: {manifest['rows']} rows ({manifest['train_rows']} training, "
        f"{manifest['holdout_rows']} holdout) of {len(FEATURE_NAMES)} features, seed {seed}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.prepare_data is not None:
        if args.out is not None or args.max_mae is not None or args.min_r2 is not None:
            parser.error("--prepare-data only writes the data set: drop --out/--max-mae/--min-r2")
        return run_prepare(args.prepare_data, args.seed)
    if args.out is None:
        parser.error("--out is required (unless --prepare-data)")
    prepared: PreparedData | None = None
    if args.data is not None:
        try:
            prepared = load_prepared(args.data)
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(
            f"{args.data / DATA_FILE}: {len(prepared.data.target)} rows "
            f"({prepared.train_rows} training), prepared with seed {prepared.seed}"
        )
    missed = []
    for recipe in RECIPES:
        model, score = train(recipe, args.seed, prepared)
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
