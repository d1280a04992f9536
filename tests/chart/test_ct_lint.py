"""What `ct lint --config ct.yaml` checks, run here without the ct binary: Chart.yaml against
the chart schema (yamale), YAML style (yamllint), and a version bump for every changed chart.
ct.yaml points ct at the same two files, so CI's ct lint and this test apply one rule set."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yamale
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from local_stack import chart
from local_stack.toolchain import REPO_ROOT

CT_CONFIG = yaml.safe_load((REPO_ROOT / "ct.yaml").read_text())
LINT_CONFIG = YamlLintConfig(file=str(REPO_ROOT / CT_CONFIG["lint-conf"]))
CHART_SCHEMA = yamale.make_schema(str(REPO_ROOT / CT_CONFIG["chart-yaml-schema"]))
CHARTS = [chart.UMBRELLA, chart.EXPORTER_CHART]


def chart_yaml_errors(chart_file: Path) -> list[str]:
    try:
        yamale.validate(CHART_SCHEMA, yamale.make_data(str(chart_file)))
    except yamale.YamaleError as error:
        return [str(result) for result in error.results]
    return []


def lint_problems(path: Path) -> list[str]:
    return [
        f"{path.name}:{p.line}: {p.message}"
        for p in linter.run(path.read_text(), LINT_CONFIG, str(path))
        if p.level == "error"
    ]


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("-")[0].split("+")[0].split("."))


def base_revision() -> str:
    """The commit that ct would compare with: the merge base with the target branch."""
    target = CT_CONFIG["target-branch"]
    for ref in (f"origin/{target}", target):
        result = subprocess.run(
            ["git", "merge-base", ref, "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            return result.stdout.strip()
    return "HEAD"


@pytest.mark.parametrize("chart_dir", CHARTS, ids=lambda p: p.name)
def test_chart_yaml_matches_the_chart_schema(chart_dir):
    assert chart_yaml_errors(chart_dir / "Chart.yaml") == []


@pytest.mark.parametrize("chart_dir", CHARTS, ids=lambda p: p.name)
def test_chart_yaml_files_pass_yamllint(chart_dir):
    files = [
        chart_dir / "Chart.yaml",
        chart_dir / "values.yaml",
        *sorted(chart_dir.glob("ci/*.yaml")),
    ]
    problems = [problem for path in files for problem in lint_problems(path)]
    assert problems == []


@pytest.mark.parametrize("chart_dir", CHARTS, ids=lambda p: p.name)
def test_a_changed_chart_has_a_higher_version(chart_dir):
    base = base_revision()
    relative = chart_dir.relative_to(REPO_ROOT)
    # Committed changes only, as on a pull request: work in progress is not judged.
    diff = ["git", "diff", "--quiet", base, "HEAD", "--", str(relative)]
    changed = subprocess.run(diff, cwd=REPO_ROOT, check=False).returncode != 0
    if not changed:
        return
    shown = subprocess.run(
        ["git", "show", f"{base}:{relative}/Chart.yaml"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if shown.returncode != 0:
        return  # a new chart
    before = yaml.safe_load(shown.stdout)["version"]
    now = yaml.safe_load(
        subprocess.run(
            ["git", "show", f"HEAD:{relative}/Chart.yaml"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["version"]
    assert version_key(now) > version_key(before), f"{relative} changed since {base[:8]}"


def test_the_checks_refuse_a_bad_chart(tmp_path):
    bad = tmp_path / "Chart.yaml"
    bad.write_text(
        "apiVersion: v1\nname: Bad_Name\nversion: '1.0'\ndescription: x\ndescription: twice\n"
    )
    errors = " ".join(chart_yaml_errors(bad))
    assert "apiVersion" in errors
    assert "semantic version" in errors
    assert any("duplication of key" in p for p in lint_problems(bad))
