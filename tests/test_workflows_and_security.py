"""GitHub workflows validate and pass zizmor; bandit finds nothing in our code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from local_stack.toolchain import REPO_ROOT

BIN_DIR = Path(sys.executable).parent
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yaml"))


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN_DIR / argv[0]), *argv[1:]],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_workflows_exist():
    assert {w.name for w in WORKFLOWS} >= {
        "ci.yaml",
        "e2e-kind.yaml",
        "retrain-model.yaml",
        "cd-deploy.yaml",
    }


def test_workflows_match_githubs_schema():
    result = run(
        "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_of_high_severity():
    result = run("zizmor", "--offline", "--format", "json", ".github/workflows")
    findings = json.loads(result.stdout)
    high = [
        f"{f['ident']}: {f['desc']}" for f in findings if f["determinations"]["severity"] == "High"
    ]
    assert high == []


def test_zizmor_would_flag_an_unpinned_action(tmp_path):
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bad.yaml").write_text(
        "on: push\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: some-org/some-action@main\n"
    )
    result = run("zizmor", "--offline", "--format", "json", str(workflows))
    assert "unpinned-uses" in {f["ident"] for f in json.loads(result.stdout)}


def test_bandit_finds_no_issue_in_our_code():
    result = run(
        "bandit", "-q", "-r", "exporter/src", "harness", "-c", "pyproject.toml", "-f", "json"
    )
    report = json.loads(result.stdout)
    assert [f"{r['test_id']} {r['filename']}:{r['line_number']}" for r in report["results"]] == []
