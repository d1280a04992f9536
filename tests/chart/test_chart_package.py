"""`helm package` of each chart, as the release workflow runs it, with the real helm and each
chart's .helmignore: the archive holds what an install and `helm test` need and none of the
leftovers a working tree collects. Helm applies the top chart's .helmignore to every file it
packages, the subchart's included (pkg/chart/loader, LoadDir; pkg/ignore: a pattern without a
slash matches that name at any depth)."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path, PurePosixPath

import pytest

from local_stack import chart
from local_stack.toolchain import REPO_ROOT

# Left in a chart folder on purpose before packaging: none may reach the archive.
LEFTOVERS = (
    ".git/HEAD",
    "__pycache__/helpers.cpython-311.pyc",
    "stray.pyc",
    "values.yaml.orig",
    "templates/NOTES.txt.orig",
    "templates/.NOTES.txt.swp",
    ".idea/workspace.xml",
)
NEVER = {".git", "__pycache__", "ci", ".idea"}
NEVER_SUFFIXES = (".pyc", ".orig", ".rej", ".swp")
STACK = f"charts/{chart.STACK_DEPENDENCY}"


def plant(chart_dir: Path) -> None:
    for relative in LEFTOVERS:
        path = chart_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("left behind\n")


def package(chart_dir: Path, destination: Path) -> list[str]:
    """The archive's paths, relative to its top folder."""
    chart.helm("package", str(chart_dir), "--destination", str(destination))
    (archive,) = destination.glob(f"{chart_dir.name}-*.tgz")
    with tarfile.open(archive) as opened:
        return [
            str(PurePosixPath(*PurePosixPath(name).parts[1:]))
            for name in opened.getnames()
            if opened.getmember(name).isfile()
        ]


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def junk(paths: list[str]) -> list[str]:
    return [
        path
        for path in paths
        if not path.startswith(STACK)
        and (NEVER & set(PurePosixPath(path).parts) or path.endswith(NEVER_SUFFIXES))
    ]


def holds_a_chart(paths: list[str], prefix: str, source: Path) -> list[str]:
    """What a chart at `prefix` in the archive lacks: its metadata, values, schema, README if
    the source has one, and every file of the source's templates/ (templates/tests/ included)."""
    inside = {path.removeprefix(prefix) for path in paths if path.startswith(prefix)}
    wanted = {"Chart.yaml", "values.yaml", "values.schema.json"}
    if (source / "README.md").exists():
        wanted.add("README.md")
    wanted |= {f"templates/{name}" for name in files_under(source / "templates")}
    return sorted(wanted - inside)


@pytest.fixture
def exporter_copy(tmp_path) -> Path:
    copy = tmp_path / "src" / chart.EXPORTER_CHART.name
    shutil.copytree(chart.EXPORTER_CHART, copy, symlinks=False)
    plant(copy)
    return copy


@pytest.fixture
def umbrella_copy(tmp_path) -> Path:
    """The umbrella, links resolved (local_stack.chart.prepare_umbrella), leftovers planted in it
    and in its subchart."""
    copy = chart.prepare_umbrella(tmp_path / "src")
    plant(copy)
    plant(copy / "charts" / "model-exporter")
    return copy


def test_the_exporter_package_holds_the_chart_and_no_leftovers(exporter_copy, tmp_path):
    paths = package(exporter_copy, tmp_path / "out")
    assert holds_a_chart(paths, "", chart.EXPORTER_CHART) == []
    assert any(path.startswith("templates/tests/") for path in paths), "helm test needs them"
    assert junk(paths) == []


def test_the_umbrella_package_holds_both_charts_rules_and_dashboards_and_no_leftovers(
    umbrella_copy, tmp_path
):
    paths = package(umbrella_copy, tmp_path / "out")
    assert holds_a_chart(paths, "", chart.UMBRELLA) == []
    assert holds_a_chart(paths, "charts/model-exporter/", chart.EXPORTER_CHART) == []
    # files/rules and files/dashboards are links to rules/ and dashboards/: packaged as files
    assert {f"files/rules/{name}" for name in files_under(REPO_ROOT / "rules")} <= set(paths)
    dashboards = files_under(REPO_ROOT / "dashboards")
    assert dashboards
    assert {f"files/dashboards/{name}" for name in dashboards} <= set(paths)
    assert junk(paths) == []


def test_without_its_helmignore_a_package_would_carry_the_leftovers(exporter_copy, tmp_path):
    """The checks above can fail: the same copy, its .helmignore removed."""
    (exporter_copy / ".helmignore").unlink()
    paths = package(exporter_copy, tmp_path / "out")
    left = junk(paths)
    assert {"values.yaml.orig", "stray.pyc", "__pycache__/helpers.cpython-311.pyc"} <= set(left)
    assert any(path.startswith("ci/") for path in left), "chart-testing's profiles"
