"""Each chart's README.md holds the parameters table that @bitnami/readme-generator-for-helm
makes of the `## @section` / `## @param` comments of its values.yaml, as the generator writes it
today, and the generator refuses values whose comments do not account for every key.

The generator (lib/checker.js, checkKeys, in 2.7.2) lists each leaf key without a `@param` as
"ERROR: Missing metadata for key: <key>" and each `@param` without a key as "ERROR: Metadata
provided for non existing key: <key>" on stdout, then throws "ERROR: Wrong metadata!": node exits
with 1 and leaves the README as it was. It is run on copies, never on the repository's files.
"""

from __future__ import annotations

import difflib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from local_stack import chart, toolchain

CHARTS = [chart.EXPORTER_CHART, chart.UMBRELLA]
INSTALL = "make setup (or: python3 harness/local_stack/toolchain.py install-readme-generator)"
OCI_REPOSITORY = "oci://ghcr.io/model-monitoring/charts"


def generator() -> Path:
    """The pinned generator; a missing one fails the test (make test installs it), never skips."""
    found = toolchain.find_readme_generator()
    if found is None:
        pytest.fail(
            f"the chart README generator ({toolchain.README_GENERATOR_PACKAGE}) is not installed "
            f"in {toolchain.NPM_PREFIX}: run {INSTALL}",
            pytrace=False,
        )
    return found


def generate(
    chart_dir: Path, workdir: Path, values: str | None = None
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Runs the generator on a copy of the chart's values.yaml (or on `values`) and README.md;
    returns its result and the copy of the README it rewrote."""
    copy = workdir / chart_dir.name
    copy.mkdir()
    (copy / "values.yaml").write_text(
        (chart_dir / "values.yaml").read_text() if values is None else values
    )
    shutil.copyfile(chart_dir / "README.md", copy / "README.md")
    result = subprocess.run(
        [str(generator()), "--values", "values.yaml", "--readme", "README.md"],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result, copy / "README.md"


@pytest.mark.parametrize("chart_dir", CHARTS, ids=lambda c: c.name)
def test_the_readme_is_what_the_generator_makes_of_the_values(chart_dir, tmp_path):
    result, generated = generate(chart_dir, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "INFO: Metadata is correct!" in result.stdout
    committed = chart_dir / "README.md"
    if generated.read_bytes() != committed.read_bytes():
        diff = difflib.unified_diff(
            committed.read_text().splitlines(),
            generated.read_text().splitlines(),
            f"charts/{chart_dir.name}/README.md (committed)",
            "generated from values.yaml",
            lineterm="",
        )
        pytest.fail(
            "the README's parameters table is not what values.yaml generates: run `make readmes`"
            " and commit the README\n" + "\n".join(list(diff)[:60]),
            pytrace=False,
        )


@pytest.mark.parametrize("chart_dir", CHARTS, ids=lambda c: c.name)
def test_the_readme_installs_this_version_from_the_published_chart(chart_dir):
    version = yaml.safe_load((chart_dir / "Chart.yaml").read_text())["version"]
    readme = (chart_dir / "README.md").read_text()
    intro = readme.split("\n## Parameters\n")[0]
    assert "helm install " in intro
    assert f"{OCI_REPOSITORY}/{chart_dir.name} --version {version} " in intro
    assert "https://github.com/model-monitoring/model-monitoring#readme" in intro


# A nested value of each chart whose @param line the test removes.
NESTED = {"model-exporter": "image.tag", "model-monitoring": "alerting.slack.apiURLSecret.key"}


def _new_key(text: str, _chart: str) -> tuple[str, str]:
    planted = text + "\n## A value added without its @param line.\nundocumentedValue: 1\n"
    return planted, "ERROR: Missing metadata for key: undocumentedValue"


def _param_removed(text: str, chart_name: str) -> tuple[str, str]:
    key = NESTED[chart_name]
    planted, removed = re.subn(rf"(?m)^ *## @param {re.escape(key)} .*\n", "", text)
    assert removed == 1, key
    return planted, f"ERROR: Missing metadata for key: {key}"


def _key_gone(text: str, _chart: str) -> tuple[str, str]:
    planted = "## @param renamedAway A value that no longer exists.\n" + text
    return planted, "ERROR: Metadata provided for non existing key: renamedAway"


PLANTED = {
    "new-key-without-param": _new_key,
    "nested-param-removed": _param_removed,
    "param-for-a-missing-key": _key_gone,
}


@pytest.mark.parametrize("planted", PLANTED)
@pytest.mark.parametrize("chart_dir", CHARTS, ids=lambda c: c.name)
def test_the_generator_refuses_values_its_comments_do_not_account_for(chart_dir, planted, tmp_path):
    values, error = PLANTED[planted]((chart_dir / "values.yaml").read_text(), chart_dir.name)
    result, readme = generate(chart_dir, tmp_path, values)
    assert result.returncode == 1, result.stdout + result.stderr
    assert error in result.stdout.splitlines()
    assert "Error: ERROR: Wrong metadata!" in result.stderr
    assert readme.read_bytes() == (chart_dir / "README.md").read_bytes(), "README left as it was"


def test_the_generator_is_the_pinned_release():
    """package.json names one exact version, the lock holds it with its integrity hash, and the
    installed copy (from `npm ci` of that lock) says it is that version."""
    source = toolchain.README_GENERATOR_SOURCE
    package, _, version = toolchain.README_GENERATOR_PACKAGE.rpartition("@")
    manifest = json.loads((source / "package.json").read_text())
    assert manifest["dependencies"] == {package: version}
    lock = json.loads((source / "package-lock.json").read_text())
    locked = lock["packages"][f"node_modules/{package}"]
    assert locked["version"] == version
    assert locked["integrity"].startswith("sha512-")
    assert all("integrity" in entry for name, entry in lock["packages"].items() if name)
    result = subprocess.run(
        [str(generator()), "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == f"Version: {version}"
