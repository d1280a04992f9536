"""Retraining on what production taught: the labelled predictions of the feedback dataset.

The most recent labels are held out to judge. The rest train a new model of each shipped recipe,
topped up with rows of the reference (training) sample when they are too few. A new model is
published only when its error on the held-out labels is not worse than production's: the
predictions production actually answered for those very rows, recorded with their labels, so
the comparison is with the model that was serving, whichever it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import mean_absolute_error

from modelmon import artifact as artifacts
from modelmon import recipes
from modelmon.feedback_dataset import FeedbackRows
from modelmon.recipes import ModelRecipe
from modelmon.training_data import PreparedData

MIN_VALIDATION_ROWS = 50
DEFAULT_MIN_TRAINING_ROWS = 2000
DEFAULT_VALIDATION_SHARE = 0.2
_SEMVER = re.compile(r"(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)")


class RetrainRefused(Exception):
    """No model is published: too few labels to judge, or a new model is worse."""


@dataclass(frozen=True)
class Split:
    """The labels a retrain learns from, the most recent ones it is judged on, and the
    reference rows that top the first up."""

    learn: FeedbackRows
    judge: FeedbackRows
    reference_features: np.ndarray
    reference_target: np.ndarray


@dataclass(frozen=True)
class Retrained:
    model: artifacts.ModelArtifact
    recipe: ModelRecipe
    new_mae: float  # on the held-out recent labels


def split(
    feedback: FeedbackRows,
    reference: PreparedData,
    seed: int,
    min_training_rows: int = DEFAULT_MIN_TRAINING_ROWS,
    validation_share: float = DEFAULT_VALIDATION_SHARE,
) -> Split:
    validation_rows = int(len(feedback) * validation_share)
    if validation_rows < MIN_VALIDATION_ROWS:
        raise RetrainRefused(
            f"{len(feedback)} labelled predictions leave {validation_rows} recent ones to "
            f"validate on; at least {MIN_VALIDATION_ROWS} are needed "
            f"(about {int(MIN_VALIDATION_ROWS / validation_share)} labels in all)"
        )
    learn = feedback.take(slice(0, len(feedback) - validation_rows))
    topped_up = max(min_training_rows - len(learn), 0)
    chosen = np.random.default_rng(seed).permutation(reference.train_rows)[:topped_up]
    return Split(
        learn,
        feedback.take(slice(len(feedback) - validation_rows, None)),
        reference.data.features[chosen],
        reference.data.target[chosen],
    )


def production_mae(data: Split) -> float:
    """What production's own answers scored on the held-out labels."""
    return float(mean_absolute_error(data.judge.actual, data.judge.prediction))


def next_version(version: str) -> str:
    """The patch release after `version` (2.0.0 → 2.0.1); another scheme gets a suffix."""
    match = _SEMVER.fullmatch(version)
    if match is None:
        return f"{version}-retrained"
    return f"{match['major']}.{match['minor']}.{int(match['patch']) + 1}"


def retrained_version(recipe: ModelRecipe, served: Iterable[str]) -> str:
    """The patch after the newest version of the recipe's major line that production served
    (the recipe's own version when it served none)."""
    major = recipe.version.split(".")[0]
    line = [v for v in set(served) if _SEMVER.fullmatch(v) and v.split(".")[0] == major]
    if not line:
        return next_version(recipe.version)
    newest = max(line, key=lambda v: tuple(int(part) for part in v.split(".")))
    return next_version(newest)


def retrain(recipe: ModelRecipe, data: Split, reference: PreparedData, seed: int) -> Retrained:
    features = np.vstack([data.learn.features, data.reference_features])
    target = np.concatenate([data.learn.actual, data.reference_target])
    model = recipes.fit(
        recipe,
        seed,
        features,
        target,
        reference.data.target_mean,
        reference.data.target_std,
        version=retrained_version(recipe, data.learn.model_version + data.judge.model_version),
    )
    return Retrained(
        model,
        recipe,
        float(mean_absolute_error(data.judge.actual, model.predict(data.judge.features))),
    )
