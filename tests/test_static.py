"""The repository's own code passes its linters and type checker."""

import ast
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


PRODUCT_CODE = ("exporter/src", "harness")
LONGEST_FUNCTION = 80


def long_functions(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > LONGEST_FUNCTION:
                    found.append(f"{path}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_product_function_is_longer_than_80_lines(repo_root):
    found = [line for folder in PRODUCT_CODE for line in long_functions(repo_root / folder)]
    assert not found, "\n".join(found)


def test_the_length_check_can_fail(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(LONGEST_FUNCTION))
    (tmp_path / "long.py").write_text(f"def long():\n{body}\n")
    assert long_functions(tmp_path) == [f"{tmp_path / 'long.py'}:1 long (81 lines)"]
