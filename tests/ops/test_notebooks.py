"""The lab's two notebooks (notebooks/): committed without outputs, and run cell by cell on a real
Jupyter kernel (the venv's ipykernel, started by nbclient) against the ops stack, with a second
user attached beside user01 and sent drifted inputs. A cell that raises fails the test with its
source and traceback. `modelmon-ops report --all-users` is checked on the same two users."""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell, new_notebook, new_output

from local_stack.stack import LocalStack, ReleaseSpec, attached
from local_stack.toolchain import REPO_ROOT
from modelmon.ops.prometheus import PrometheusAPI
from modelmon.ops.users import lab_namespace
from opstool import NAMESPACE, RELEASE, USER, Ran, run_ops
from support import eventually

NOTEBOOKS = REPO_ROOT / "notebooks"
LAB_NOTEBOOKS = ("part1_monitoring.ipynb", "part2_cicd.ipynb")
DRIFTED_USER = "user02"  # the lab's USER_NUM=02
DRIFT_ALERT = "ModelDriftDetected"
UMBRELLA_VALUES = REPO_ROOT / "charts" / "model-monitoring" / "values.yaml"
DRIFT_THRESHOLD = float(
    yaml.safe_load(UMBRELLA_VALUES.read_text())["rules"]["alerts"][DRIFT_ALERT]["threshold"]
)
CELL_TIMEOUT = 60
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KERNEL_PYTHON = "import sys\nprint(sys.executable)"


def unstripped(notebook: Any) -> list[str]:
    """The code cells that still carry outputs or an execution count."""
    return [
        f"cell {index}: {len(cell.outputs)} outputs, execution count {cell.execution_count}"
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]


def test_every_notebook_is_committed_without_outputs() -> None:
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert set(LAB_NOTEBOOKS) <= {path.name for path in paths}
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        assert notebook.metadata.kernelspec.name == "python3", path.name
        assert not unstripped(notebook), f"{path.name}: strip its outputs\n" + "\n".join(
            unstripped(notebook)
        )


def test_the_strip_check_finds_an_executed_cell() -> None:
    ran = new_code_cell("1 + 1", execution_count=1)
    ran.outputs = [new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
    counted = new_code_cell("pass", execution_count=2)
    notebook = new_notebook(cells=[new_code_cell("clean"), ran, counted])
    assert unstripped(notebook) == [
        "cell 1: 1 outputs, execution count 1",
        "cell 2: 0 outputs, execution count 2",
    ]


def labelled_load(router: str, prometheus: str, user: str, level: str) -> Ran:
    return run_ops(
        "load",
        *("--url", router, "--prometheus-url", prometheus, "--user", user),
        *("--mix", "0:1:0", "--rate", "40", "--duration", "6s", "--level", level),
    )


def active_alerts(api: PrometheusAPI, user: str) -> set[str]:
    return {
        alert["labels"]["alertname"]
        for alert in api.alerts()
        if alert["labels"].get("user_id") == user
    }


@pytest.fixture(scope="module")
def two_users(ops_stack: LocalStack, router_url: str) -> Iterator[str]:
    """user02 installed beside user01 (`helm install user02` in kubeflow-user02, attached to the
    stack); 6 s of labelled predictions to each, user02's inputs drifted high, until
    Prometheus has user02's drift alert pending. Yields Prometheus's URL; uninstalls user02."""
    ops_stack.install(attached(DRIFTED_USER, ReleaseSpec(RELEASE, NAMESPACE)))
    try:
        drifted = ops_stack.service_url(
            f"{DRIFTED_USER}-model-exporter-router", namespace=lab_namespace(DRIFTED_USER)
        )
        prometheus = ops_stack.prometheus.url
        ran: dict[str, Ran] = {}

        def load(url: str, user: str, level: str) -> None:
            ran[user] = labelled_load(url, prometheus, user, level)

        loads = [
            threading.Thread(target=load, args=target)
            for target in ((router_url, USER, "none"), (drifted, DRIFTED_USER, "high"))
        ]
        for thread in loads:
            thread.start()
        for thread in loads:
            thread.join(timeout=60)
        for user in (USER, DRIFTED_USER):
            assert ran[user].code == 0, ran[user].stderr
        api = PrometheusAPI(prometheus)
        eventually(
            lambda: active_alerts(api, DRIFTED_USER),
            lambda names: DRIFT_ALERT in names,
            20,
            f"{DRIFT_ALERT} pending for {DRIFTED_USER}",
        )
        yield prometheus
    finally:
        ops_stack.uninstall(DRIFTED_USER)


def kernel_env(prometheus: str, tmp_path: Path) -> dict[str, str]:
    """The kernel's environment: the lab's USER_NUM names the user, MODELMON_OPS_* the rest;
    none of the test process's own MODELMON_OPS_* or GITHUB_* leak in."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MODELMON_OPS_"))}
    return {
        **clean,
        "USER_NUM": DRIFTED_USER.removeprefix("user"),
        "MODELMON_OPS_PROMETHEUS_URL": prometheus,
        "MODELMON_OPS_SINCE": "2m",
        "MODELMON_OPS_RATE_WINDOW": "20s",
        "MODELMON_OPS_STATE_FILE": str(tmp_path / "retrain-cooldown.json"),
    }


def execute(name: str, env: dict[str, str], cwd: Path) -> Any:
    """The notebook run as Jupyter runs it, with one cell added at the end that prints the
    kernel's Python. A cell error fails the test with the cell's source and traceback."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    notebook.cells.append(new_code_cell(KERNEL_PYTHON))
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(cwd)}},
    )
    try:
        client.execute(env=env)
    except CellExecutionError as exc:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # the traceback's colours
        pytest.fail(f"{name}: a cell failed\n{plain}", pytrace=False)
    kernel_python = stream_text(notebook.cells[-1]).strip()
    assert kernel_python == sys.executable, f"{name} ran on {kernel_python}, not the venv's Python"
    notebook.cells.pop()
    return notebook


def outputs(notebook: Any) -> list[Any]:
    return [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]


def stream_text(*cells: Any) -> str:
    return "".join(
        output.text
        for cell in cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream"
    )


def markdown_outputs(notebook: Any) -> list[str]:
    return [
        o.data["text/markdown"] for o in outputs(notebook) if "text/markdown" in o.get("data", {})
    ]


def test_part1_shows_every_user_the_metrics_the_alerts_and_the_drift(
    two_users: str, tmp_path: Path
) -> None:
    notebook = execute("part1_monitoring.ipynb", kernel_env(two_users, tmp_path), tmp_path)
    printed = stream_text(*notebook.cells)
    assert f"user {DRIFTED_USER}" in printed  # USER_NUM=02, as the lab sets it
    users = re.search(r"^users: (.*)$", printed, re.MULTILINE)
    assert users, printed
    assert {USER, DRIFTED_USER} <= set(users[1].split(", "))
    images = [o for o in outputs(notebook) if "image/png" in o.get("data", {})]
    # every user, four panels (rate, latency, MAE, accuracy), the timeline, drift over time
    assert len(images) >= 7, f"{len(images)} images"
    tables = markdown_outputs(notebook)
    [side_by_side] = [t for t in tables if t.startswith("| user | variant |")]
    for user in (USER, DRIFTED_USER):
        assert re.search(rf"^\| {user} \| stable \| [\d.]+ \|", side_by_side, re.MULTILINE), (
            side_by_side
        )
    [timeline] = [t for t in tables if t.startswith("| alert | pending / firing |")]
    assert re.search(rf"^\| {DRIFT_ALERT} \[{DRIFTED_USER} stable\] \| pending ", timeline, re.M)
    [drift] = [t for t in tables if t.startswith("| feature |")]
    assert re.search(r"^\| x\d+ \| [\d.]+ over \|", drift, re.MULTILINE), drift
    over = re.search(r"^threshold ([\d.]+); features over it: (x\d+.*)$", printed, re.MULTILINE)
    assert over, printed
    assert float(over[1]) == DRIFT_THRESHOLD


def test_part2_checks_the_drift_and_simulates_the_retrain_trigger(
    two_users: str, tmp_path: Path
) -> None:
    notebook = execute("part2_cicd.ipynb", kernel_env(two_users, tmp_path), tmp_path)
    printed = stream_text(*notebook.cells)
    assert re.search(r"^retrain: True$", printed, re.MULTILINE), printed
    assert re.search(r"^Detected: True$", printed, re.MULTILINE), printed
    score = re.search(r"^Score: (\d+\.\d{4})$", printed, re.MULTILINE)
    assert score, printed
    assert float(score[1]) > DRIFT_THRESHOLD
    assert "dry run, would dispatch" in printed
    assert re.search(r"^exit code: 0$", printed, re.MULTILINE), printed
    assert re.search(r"^gate exit code: [013]$", printed, re.MULTILINE), printed
    # the dry run kept its cooldown in the file the environment named, beside the real one
    assert (tmp_path / "retrain-cooldown.dry-run.json").exists()
    assert not (tmp_path / "retrain-cooldown.json").exists()


def test_the_report_puts_every_user_side_by_side(two_users: str, tmp_path: Path) -> None:
    out = tmp_path / "report"
    ran = run_ops(
        "report",
        *("--prometheus-url", two_users, "--user", USER, "--all-users"),
        *("--since", "2m", "--rate-window", "20s", "--out", str(out)),
    )
    assert ran.code == 0, ran.stderr
    page = (out / "report.md").read_text()
    section = page.split("## Every user side by side")[1].split("\n## ")[0]
    for user in (USER, DRIFTED_USER):
        for variant in ("stable", "canary"):
            assert re.search(rf"^\| {user} \| {variant} \| ", section, re.MULTILINE), section
    assert "![Every user side by side](users.png)" in section
    assert (out / "users.png").read_bytes()[:8] == PNG_SIGNATURE
    # the timeline covers every user's alerts; the rest of the page stays user01's
    assert re.search(rf"^\| {DRIFT_ALERT} \[{DRIFTED_USER} stable\] \| pending ", page, re.M)
    assert page.startswith(f"# Model report: {USER}\n")
    html = (out / "report.html").read_text()
    for user in (USER, DRIFTED_USER):
        assert f"<td>{user}</td>" in html
    assert html.count('src="data:image/png;base64,') == page.count("![")
