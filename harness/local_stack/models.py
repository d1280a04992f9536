"""The model artifacts that the exporter image carries, built the way its Dockerfile builds them."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from local_stack.toolchain import REPO_ROOT

# The folder the Dockerfile trains the models into; Deployments name artifacts under it.
IMAGE_MODEL_DIR = "/opt/modelmon/models"
MODEL_SOURCES = ("dataset.py", "artifact.py", "recipes.py", "train.py")
CACHE_DIR = REPO_ROOT / ".cache" / "models"


class ModelBuildError(Exception):
    """Training the shipped models failed."""


def _source_digest(package_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in MODEL_SOURCES:
        digest.update((package_dir / name).read_bytes())
    return digest.hexdigest()[:16]


def ensure_models(trainer: Path, package_dir: Path, cache_dir: Path = CACHE_DIR) -> Path:
    """Folder holding the trained artifacts; trains once per version of the training code.

    Parallel test workers may race here: each trains into a folder of its own and renames it
    into place, so a reader never sees a half-written cache."""
    target = cache_dir / _source_digest(package_dir)
    if (target / ".complete").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=cache_dir))
    result = subprocess.run(
        [str(trainer), "--out", str(scratch)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        raise ModelBuildError(f"training the demo models failed: {result.stderr.strip()}")
    (scratch / ".complete").write_text(result.stdout)
    try:
        scratch.rename(target)
    except OSError:  # another worker finished first, or a stale incomplete folder is in the way
        if not (target / ".complete").is_file():
            shutil.rmtree(target, ignore_errors=True)
            scratch.rename(target)
    shutil.rmtree(scratch, ignore_errors=True)
    return target
