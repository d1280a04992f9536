"""The benchmark's peers are set up as bench/peers.py says: MLServer loads the estimator with the
exporter's own scikit-learn, numpy and joblib, so both serve the same pickled model."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_PINS = ("scikit-learn", "numpy", "joblib", "scipy", "threadpoolctl")


def pins(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^([a-z0-9-]+)==(\S+)", path.read_text(), re.MULTILINE))


@pytest.mark.parametrize("package", SHARED_PINS)
def test_mlserver_gets_the_exporters_version_of(package):
    exporter = pins(REPO_ROOT / "exporter" / "requirements.txt")
    mlserver = pins(REPO_ROOT / "bench" / "mlserver.txt")
    assert mlserver[package] == exporter[package]


def test_the_mlserver_lock_pins_what_its_input_names():
    wanted = pins(REPO_ROOT / "bench" / "mlserver.in")
    locked = pins(REPO_ROOT / "bench" / "mlserver.txt")
    assert {name: locked.get(name) for name in wanted} == wanted


BENCH_DIR = REPO_ROOT / "bench"


def run_script(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH_DIR / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=BENCH_DIR,
    )


@pytest.mark.parametrize(
    "script", ["bench_exporter.py", "bench_router.py", "bench_gate.py", "model_floor.py"]
)
def test_the_benchmark_scripts_import_and_explain_themselves(script):
    """`make bench` is not part of the suite: this keeps its scripts from rotting unseen."""
    done = run_script(script, "--help")
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_mlserver_is_given_the_artifacts_estimator_and_the_exporters_batching_limits(
    model_dir, tmp_path
):
    sys.path.insert(0, str(BENCH_DIR))
    try:
        import peers
    finally:
        sys.path.remove(str(BENCH_DIR))
    from modelmon import artifact
    from modelmon.config import BATCHING_MAX_ROWS, BATCHING_MAX_WAIT_SECONDS

    model = model_dir / "model-v1.joblib"
    server = peers.mlserver("adaptive", model, tmp_path, adaptive=True)
    [settings_file] = tmp_path.rglob("model-settings.json")
    settings = json.loads(settings_file.read_text())
    assert settings["max_batch_size"] == int(BATCHING_MAX_ROWS)
    assert settings["max_batch_time"] == float(BATCHING_MAX_WAIT_SECONDS)
    estimator = joblib.load(settings_file.parent / settings["parameters"]["uri"])
    row = np.array([server.body["inputs"][0]["data"]])
    assert estimator.predict(row)[0] == artifact.load(model).predict(row)[0]
    plain = peers.mlserver("plain", model, tmp_path, adaptive=False)
    [plain_settings] = [p for p in tmp_path.rglob("model-settings.json") if "plain" in str(p)]
    assert "max_batch_size" not in json.loads(plain_settings.read_text())
    assert plain.path == server.path


def test_the_gate_benchmark_writes_a_row_per_delay_canary_and_procedure(tmp_path):
    out = tmp_path / "results-gate.md"
    done = run_script("bench_gate.py", "--aa-runs", "20", "--runs", "10", "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = [
        line for line in out.read_text().splitlines() if line.startswith("| ") and " min |" in line
    ]
    assert len(rows) == 3 * 4 * 2  # delays x canaries x procedures
    assert "False rollbacks of the sequential gate" in out.read_text()
