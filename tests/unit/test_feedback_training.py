"""modelmon-train --feedback: models retrained on drifted production labels beat what production
answered for the newest of them; models trained on bad labels are refused and nothing is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelmon import artifact
from modelmon.dataset import FEATURE_NAMES
from modelmon.feedback_dataset import FeedbackDataset, LabelledPrediction
from modelmon.feedback_training import next_version, retrained_version
from modelmon.recipes import RECIPES
from modelmon.train import main as train_main
from traffic import real_mae, sample

LABELS = 1500


def write_feedback(
    folder: Path, served: artifact.ModelArtifact, level: str, corrupt_older: bool = False
) -> None:
    """LABELS predictions of the `served` model on rows at the drift level, with their labels."""
    features, truths = sample(level, seed=11, count=LABELS)
    answered = served.predict(features)
    dataset = FeedbackDataset(str(folder), FEATURE_NAMES, writer="test")
    dataset.start()
    for index, (truth, row, prediction) in enumerate(zip(truths, features, answered, strict=True)):
        actual = -truth if corrupt_older and index < LABELS * 0.8 else truth
        dataset.append(
            LabelledPrediction(
                f"stable-{index:032x}",
                "stable",
                served.version,
                1e9 + index,
                1e9 + index,
                row.tobytes(),
                float(prediction),
                actual,
            )
        )
    dataset.close()


def test_retraining_on_drifted_labels_beats_the_served_model_on_new_drifted_rows(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
):
    served = artifact.load(model_dir / "model-v1.joblib")
    write_feedback(tmp_path / "feedback", served, "high")
    code = train_main(["--feedback", str(tmp_path / "feedback"), "--out", str(tmp_path / "models")])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "learning from 1200 + 800 reference rows, judged on the 300 most recent" in out.out
    for recipe in RECIPES:
        retrained = artifact.load(tmp_path / "models" / recipe.file_name)
        assert retrained.algorithm == recipe.algorithm
        before, under = real_mae(served, "none", seed=12), real_mae(served, "high", seed=12)
        after = real_mae(retrained, "high", seed=12)
        print(f"{recipe.algorithm}: MAE {before:.3f} before drift, {under:.3f} under, {after:.3f}")
        assert after < 0.8 * under
    assert artifact.load(tmp_path / "models" / "model-v1.joblib").version == "1.0.1"
    assert artifact.load(tmp_path / "models" / "model-v2.joblib").version == "2.0.1"


def test_models_worse_than_production_are_not_published(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
):
    served = artifact.load(model_dir / "model-v2.joblib")
    write_feedback(tmp_path / "feedback", served, "none", corrupt_older=True)
    code = train_main(
        [
            "--feedback", str(tmp_path / "feedback"),
            "--out", str(tmp_path / "models"),
            "--min-training-rows", "0",
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert "worse: not published" in captured.out
    assert "did worse than production on the 300 most recent labels: nothing published" in (
        captured.err
    )
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--feedback", "x", "--out", "o", "--max-mae", "0.3"], "the bar is production's own MAE"),
        (["--feedback", "x", "--out", "o", "--validation-share", "1"], "between 0 and 1"),
        (["--feedback", "x", "--out", "o", "--min-training-rows", "-1"], "cannot be negative"),
        (["--feedback", "x", "--prepare-data", "d"], "only writes the data set"),
    ],
)
def test_feedback_flags_are_checked(argv, message, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exited:
        train_main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_missing_dataset_or_too_few_labels_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    out = str(tmp_path / "models")
    assert train_main(["--feedback", str(tmp_path / "none"), "--out", out]) == 2
    assert "no such dataset" in capsys.readouterr().err
    few = FeedbackDataset(str(tmp_path / "few"), FEATURE_NAMES, writer="test")
    few.start()
    for index in range(20):
        few.append(
            LabelledPrediction(
                f"stable-{index}", "stable", "2.0.0", 1e9, 1e9, np.zeros(10).tobytes(), 0.0, 0.0
            )
        )
    few.close()
    assert train_main(["--feedback", str(tmp_path / "few"), "--out", out]) == 2
    assert "at least 50 are needed" in capsys.readouterr().err
    assert not Path(out).exists()


def test_the_new_version_follows_the_newest_that_production_served():
    v1, v2 = RECIPES
    assert next_version("2.0.9") == "2.0.10"
    assert next_version("nightly") == "nightly-retrained"
    assert retrained_version(v2, ["2.0.0", "1.0.3", "2.0.4", "2.0.1"]) == "2.0.5"
    assert retrained_version(v1, ["2.0.0"]) == "1.0.1"
