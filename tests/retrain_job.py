"""The retrain job of retrain-model.yaml, run here as a runner runs it: its own bash scripts, in
order, in a fresh work folder, with the repository's virtual environment as the job's `.venv`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from local_stack.toolchain import REPO_ROOT

RETRAIN_WORKFLOW = REPO_ROOT / ".github" / "workflows" / "retrain-model.yaml"
PREPARE_STEP = "Prepare the training data set"
RETRAIN_STEP = "Retrain on the production feedback"


def step_script(job: str, prefix: str) -> tuple[str, dict[str, str]]:
    """The `run` script of the job's step whose name starts with `prefix`, and its env names."""
    workflow = yaml.safe_load(RETRAIN_WORKFLOW.read_text())
    [step] = [s for s in workflow["jobs"][job]["steps"] if s.get("name", "").startswith(prefix)]
    return step["run"], step.get("env", {})


def run_script(script: str, workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = workdir / "step.sh"
    path.write_text(script)
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)],
        cwd=workdir,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def run_retrain_job(
    workdir: Path, user_id: str, feedback_url: str, seed: str = "7"
) -> subprocess.CompletedProcess[str]:
    """prepare-data's data step, then the retrain step with FEEDBACK_DATASET_URL set as the
    repository variable would set it. The models land in workdir/models."""
    (workdir / ".venv").symlink_to(REPO_ROOT / ".venv")
    (workdir / "exporter").symlink_to(REPO_ROOT / "exporter")
    prepare, prepare_env = step_script("prepare-data", PREPARE_STEP)
    assert set(prepare_env) == {"SEED"}
    prepared = run_script(prepare, workdir, {"SEED": seed})
    if prepared.returncode != 0:
        return prepared
    retrain, retrain_env = step_script("retrain", RETRAIN_STEP)
    assert set(retrain_env) == {"USER_ID", "FEEDBACK_DATASET_URL"}
    return run_script(retrain, workdir, {"USER_ID": user_id, "FEEDBACK_DATASET_URL": feedback_url})
