"""Fixtures shared by every tier of the suite."""

from __future__ import annotations

import sys
from pathlib import Path

import modelmon
import pytest
from local_stack.models import ensure_models
from local_stack.toolchain import REPO_ROOT

BIN_DIR = Path(sys.executable).parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The shipped model artifacts, trained as the image build trains them (cached)."""
    return ensure_models(BIN_DIR / "modelmon-train", Path(modelmon.__file__).parent)
