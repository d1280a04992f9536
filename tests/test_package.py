"""The modelmon package as its users install it: what it imports is what it declares, every
command says its version, its readme stands on its own, and it ships its type information."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import modelmon
from local_stack.toolchain import REPO_ROOT

PACKAGE = REPO_ROOT / "exporter"
SOURCE = PACKAGE / "src" / "modelmon"
PROJECT = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]
BIN_DIR = Path(sys.executable).parent


def requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def imported_distributions(source: Path) -> set[str]:
    """The distributions whose top-level modules the package imports (outside itself)."""
    modules = set()
    for path in source.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    owners = metadata.packages_distributions()
    return {
        dist.lower().replace("_", "-")
        for module in modules - set(sys.stdlib_module_names) - {"modelmon"}
        for dist in owners.get(module, [module])
    }


def test_what_the_package_imports_is_what_it_declares() -> None:
    declared = {requirement_name(r) for r in PROJECT["dependencies"]}
    optional = {
        requirement_name(r) for extra in PROJECT["optional-dependencies"].values() for r in extra
    }
    imported = imported_distributions(SOURCE)
    assert imported - declared - optional == set(), "imported but not declared"
    # uvicorn loads these by name: the serving module names them
    serving = (SOURCE / "serving.py").read_text()
    by_name = {name for name in ("httptools", "uvloop") if f'"{name}"' in serving}
    assert declared - imported - by_name == set(), "declared but never used"


@pytest.mark.parametrize("command", sorted(PROJECT["scripts"]))
def test_every_command_says_its_version(command: str) -> None:
    done = subprocess.run(
        [str(BIN_DIR / command), "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{command} {modelmon.__version__}"


def test_the_readme_ships_and_stands_on_its_own() -> None:
    readme = PACKAGE / PROJECT["readme"]
    text = readme.read_text()
    assert "../" not in text, "a link out of the package does not work on PyPI or in the wheel"
    for command in PROJECT["scripts"]:
        assert command in text, command
    assert len(text.splitlines()) > 20


def test_the_package_ships_its_type_information() -> None:
    assert (SOURCE / "py.typed").is_file()
    package_data = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["modelmon"]
    assert "py.typed" in package_data


def test_the_license_the_package_declares_is_the_one_it_ships() -> None:
    assert PROJECT["license"] == "Apache-2.0"
    for folder in (REPO_ROOT, PACKAGE):
        text = (folder / "LICENSE").read_text()
        assert "Apache License" in text, folder
        assert "Version 2.0, January 2004" in text, folder
    assert PROJECT["license-files"] == ["LICENSE"]
    # the image's build context is exporter/, so the package keeps a copy: the same text
    assert (PACKAGE / "LICENSE").read_text() == (REPO_ROOT / "LICENSE").read_text()


def test_the_wheel_ships_the_readme_the_dashboard_the_types_and_the_license(tmp_path) -> None:
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(
        PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    subprocess.run(
        [
            str(BIN_DIR / "pip"),
            "wheel",
            "--quiet",
            "--no-build-isolation",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("modelmon-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [metadata_file] = [n for n in names if n.endswith(".dist-info/METADATA")]
        description = archive.read(metadata_file).decode()
    assert "modelmon/py.typed" in names
    assert "modelmon/dashboards/model-monitoring.json" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert "| `modelmon-router` |" in description, "the package readme is the long description"
