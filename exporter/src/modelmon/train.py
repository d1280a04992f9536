"""Train the two shipped model versions: v1 (random forest) as stable, v2 (gradient boosting).

    modelmon-train --out MODELS                 generate the data set from --seed and train
    modelmon-train --prepare-data DATA          only write the data set (DATA/dataset.npz and the
                                                DATA/dataset.json manifest), for a later run
    modelmon-train --data DATA --out MODELS     train from a data set written by --prepare-data
    modelmon-train --feedback URL --out MODELS  retrain both on the feedback dataset (the
                                                labelled predictions the exporters wrote), topped
                                                up from the data set; published only when no
                                                model is worse than production on recent labels

Exit codes: 0 done; 1 a model missed the quality bar (--max-mae, --min-r2), a retrained model was
worse than the current one, or a file could not be written; 2 a usage error or a data set that is
missing, corrupt or inconsistent.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from sklearn.metrics import mean_absolute_error, r2_score

from modelmon import __version__, feedback_training, recipes
from modelmon import artifact as artifacts
from modelmon.dataset import DEFAULT_SEED, FEATURE_NAMES
from modelmon.feedback_dataset import FeedbackDatasetError, read_feedback
from modelmon.feedback_training import (
    DEFAULT_MIN_TRAINING_ROWS,
    DEFAULT_VALIDATION_SHARE,
    RetrainRefused,
)
from modelmon.recipes import RECIPES, ModelRecipe
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
    model = recipes.fit(recipe, seed, train_x, train_y, data.target_mean, data.target_std)
    predicted = model.predict(holdout_x)
    score = HoldoutScore(
        mae=float(mean_absolute_error(holdout_y, predicted)),
        r2=float(r2_score(holdout_y, predicted)),
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
    parser.add_argument(
        "--feedback",
        metavar="URL",
        help="retrain on the feedback dataset at this fsspec URL (a folder, s3://...) instead",
    )
    parser.add_argument(
        "--min-training-rows",
        type=int,
        default=DEFAULT_MIN_TRAINING_ROWS,
        help="with --feedback: top the labels up with reference rows to this many "
        f"(default {DEFAULT_MIN_TRAINING_ROWS})",
    )
    parser.add_argument(
        "--validation-share",
        type=float,
        default=DEFAULT_VALIDATION_SHARE,
        help="with --feedback: the most recent share of the labels, held out to compare the "
        f"models (default {DEFAULT_VALIDATION_SHARE})",
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
        others = (args.out, args.max_mae, args.min_r2, args.feedback)
        if any(other is not None for other in others):
            parser.error(
                "--prepare-data only writes the data set: drop --out/--max-mae/--min-r2/--feedback"
            )
        return run_prepare(args.prepare_data, args.seed)
    if args.out is None:
        parser.error("--out is required (unless --prepare-data)")
    if not 0 < args.validation_share < 1:
        parser.error("--validation-share must be between 0 and 1")
    if args.min_training_rows < 0:
        parser.error("--min-training-rows cannot be negative")
    if args.feedback is not None and (args.max_mae is not None or args.min_r2 is not None):
        parser.error("with --feedback the bar is production's own MAE: drop --max-mae/--min-r2")
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
    if args.feedback is not None:
        return run_feedback(args, prepared or generated_data(args.seed))
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


def run_feedback(args: argparse.Namespace, reference: PreparedData) -> int:
    try:
        feedback = read_feedback(args.feedback, FEATURE_NAMES)
        data = feedback_training.split(
            feedback, reference, args.seed, args.min_training_rows, args.validation_share
        )
    except (FeedbackDatasetError, RetrainRefused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    production = feedback_training.production_mae(data)
    print(
        f"{args.feedback}: {len(feedback)} labelled predictions; learning from "
        f"{len(data.learn)} + {len(data.reference_target)} reference rows, judged on the "
        f"{len(data.judge)} most recent, where production's answers scored MAE {production:.4f}"
    )
    retrained = [
        feedback_training.retrain(recipe, data, reference, args.seed) for recipe in RECIPES
    ]
    worse = [r for r in retrained if r.new_mae > production]
    for result in retrained:
        verdict = "worse: not published" if result in worse else "not worse"
        print(
            f"  {result.recipe.algorithm} v{result.model.version}: MAE {result.new_mae:.4f}, "
            f"{verdict}"
        )
    if worse:
        print(
            f"error: {len(worse)} retrained model(s) did worse than production on the "
            f"{len(data.judge)} most recent labels: nothing published",
            file=sys.stderr,
        )
        return 1
    for result in retrained:
        target = args.out / result.recipe.file_name
        try:
            artifacts.save(result.model, target)
        except OSError as exc:
            print(f"error: cannot write {target}: {exc.strerror}", file=sys.stderr)
            return 1
        print(f"{target}: {result.recipe.algorithm} v{result.model.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
