"""The repository's own code passes its linters and type checker."""

import subprocess
import sys
from pathlib import Path

import pytest

BIN_DIR = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_code_is_clean(repo_root, command):
    result = subprocess.run(
        [str(BIN_DIR / command[0]), *command[1:]],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
