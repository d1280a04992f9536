"""modelmon-train --prepare-data DIR, then --data DIR: the retrain workflow's two steps."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelmon import artifact, train, training_data
from modelmon.dataset import DEFAULT_SEED, FEATURE_NAMES

TRAINER = str(Path(sys.executable).parent / "modelmon-train")


def run_trainer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TRAINER, *args], capture_output=True, text=True, timeout=120, check=False
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *words: str):
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    directory = tmp_path_factory.mktemp("prepared") / "data"
    result = run_trainer("--prepare-data", str(directory), "--seed", "7")
    assert result.returncode == 0, result.stderr
    assert "6000 rows" in result.stdout
    return directory


@pytest.fixture
def copy(prepared, tmp_path):
    """A private copy of the prepared folder that a test may damage."""
    return Path(shutil.copytree(prepared, tmp_path / "data"))


def rewrite_arrays(directory: Path, **arrays):
    """Replace dataset.npz and fix the manifest's checksum, so only the content is wrong."""
    with (directory / "dataset.npz").open("wb") as stream:
        np.savez(stream, **arrays)
    manifest = json.loads((directory / "dataset.json").read_text())
    digest = hashlib.sha256((directory / "dataset.npz").read_bytes()).hexdigest()
    manifest["files"]["dataset.npz"]["sha256"] = digest
    (directory / "dataset.json").write_text(json.dumps(manifest))


def edit_manifest(directory: Path, **changes):
    manifest = json.loads((directory / "dataset.json").read_text())
    manifest.update(changes)
    (directory / "dataset.json").write_text(json.dumps(manifest))


def test_prepare_writes_the_arrays_and_a_manifest(prepared):
    manifest = json.loads((prepared / "dataset.json").read_text())
    assert manifest["seed"] == 7
    assert manifest["rows"] == training_data.TRAIN_ROWS + training_data.HOLDOUT_ROWS
    assert manifest["train_rows"] == training_data.TRAIN_ROWS
    assert manifest["feature_names"] == list(FEATURE_NAMES)
    digest = hashlib.sha256((prepared / "dataset.npz").read_bytes()).hexdigest()
    assert manifest["files"]["dataset.npz"]["sha256"] == digest
    with np.load(prepared / "dataset.npz", allow_pickle=False) as arrays:
        assert arrays["features"].shape == (manifest["rows"], len(FEATURE_NAMES))
        assert arrays["target"].shape == (manifest["rows"],)
        # the standardised target: mean 0 and standard deviation 1 over all rows
        assert abs(float(arrays["target"].mean())) < 1e-9
        assert float(arrays["target"].std()) == pytest.approx(1.0)
    assert not list(prepared.glob("*.partial"))


def test_prepared_data_is_the_data_set_the_seed_generates(prepared):
    loaded = training_data.load_prepared(prepared)
    generated = training_data.generated_data(7)
    assert loaded.seed == 7
    assert loaded.train_rows == generated.train_rows
    np.testing.assert_array_equal(loaded.data.features, generated.data.features)
    np.testing.assert_array_equal(loaded.data.target, generated.data.target)
    assert loaded.data.target_mean == generated.data.target_mean
    assert loaded.data.target_std == generated.data.target_std


def test_training_from_prepared_data_gives_both_models(prepared, tmp_path):
    out = tmp_path / "models"
    result = run_trainer(
        "--data", str(prepared), "--out", str(out), "--max-mae", "0.35", "--min-r2", "0.85"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((prepared / "dataset.json").read_text())
    for recipe in train.RECIPES:
        model = artifact.load(out / recipe.file_name)
        assert model.version == recipe.version
        assert model.feature_names == FEATURE_NAMES
        # the served model un-standardises with the prepared data set's statistics
        assert model.target_mean == manifest["target_mean"]
        assert model.target_std == manifest["target_std"]
        assert f"{recipe.file_name}: {recipe.algorithm}" in result.stdout


def test_without_the_new_flags_training_is_unchanged(prepared):
    """--data with the default seed's data set scores exactly like the generated default."""
    recipe = train.RECIPES[1]  # the fast one
    _, from_generated = train.train(recipe, DEFAULT_SEED)
    _, from_prepared = train.train(recipe, DEFAULT_SEED, training_data.generated_data(DEFAULT_SEED))
    assert from_prepared == from_generated
    _, from_seven = train.train(recipe, DEFAULT_SEED, training_data.load_prepared(prepared))
    assert from_seven != from_generated, "the prepared data set (seed 7) must be the one used"


def test_a_missing_folder_is_a_one_line_error(tmp_path):
    result = run_trainer("--data", str(tmp_path / "absent"), "--out", str(tmp_path / "m"))
    assert_one_line_error(result, 2, "does not exist")
    assert not (tmp_path / "m").exists()


def test_a_corrupt_array_file_is_a_one_line_error(copy, tmp_path):
    with (copy / "dataset.npz").open("r+b") as stream:
        stream.truncate(1000)
    result = run_trainer("--data", str(copy), "--out", str(tmp_path / "m"))
    assert_one_line_error(result, 2, "corrupt", "sha256")


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda d: (d / "dataset.json").unlink(), ("not found", "--prepare-data")),
        (lambda d: (d / "dataset.npz").unlink(), ("not found",)),
        (lambda d: (d / "dataset.json").write_text("{"), ("not valid JSON",)),
        (lambda d: (d / "dataset.json").write_text("[]"), ("not a JSON object",)),
        (lambda d: edit_manifest(d, format_version=9), ("format_version",)),
        (lambda d: edit_manifest(d, rows="many"), ("'rows'", "not a int")),
        (lambda d: edit_manifest(d, train_rows=5999), ("no holdout",)),
        (lambda d: edit_manifest(d, feature_names=["a", "b"]), ("not the served model's",)),
        (lambda d: edit_manifest(d, target_std=0.0), ("target_std",)),
        (lambda d: rewrite_arrays(d, features=np.zeros((6000, 10))), ("lacks the array",)),
        (
            lambda d: rewrite_arrays(d, features=np.zeros((5, 10)), target=np.zeros(5)),
            ("do not match",),
        ),
        (
            lambda d: rewrite_arrays(
                d, features=np.full((6000, 10), np.nan), target=np.zeros(6000)
            ),
            ("NaN",),
        ),
        (
            lambda d: rewrite_arrays(
                d, features=np.array([{"a": 1}] * 6000, dtype=object), target=np.zeros(6000)
            ),
            ("cannot read", "pickle"),
        ),
    ],
)
def test_a_broken_data_set_ends_in_one_line_and_exit_2(copy, tmp_path, capsys, damage, words):
    damage(copy)
    assert train.main(["--data", str(copy), "--out", str(tmp_path / "m")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0]
    assert not (tmp_path / "m").exists()


def test_prepare_and_data_are_exclusive_and_out_stays_required(tmp_path, capsys):
    with pytest.raises(SystemExit) as both:
        train.main(["--prepare-data", str(tmp_path / "a"), "--data", str(tmp_path / "b")])
    assert both.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
    with pytest.raises(SystemExit) as no_out:
        train.main(["--data", str(tmp_path / "b")])
    assert no_out.value.code == 2
    assert "--out is required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as extra:
        train.main(["--prepare-data", str(tmp_path / "a"), "--out", str(tmp_path / "m")])
    assert extra.value.code == 2
    assert not (tmp_path / "a").exists()


def test_prepare_into_an_unwritable_place_is_a_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert train.main(["--prepare-data", str(blocker / "data")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: cannot write the data set")
