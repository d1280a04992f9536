"""load (and the shipped locustfile) against the local stack, and the one-line errors of every
command when what it talks to is not there."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from local_stack.pods import free_port
from local_stack.stack import LocalStack
from local_stack.toolchain import REPO_ROOT
from opstool import USER, run_ops
from support import eventually

LOCUSTFILE = REPO_ROOT / "loadtest" / "locustfile.py"
BIN_DIR = Path(sys.executable).parent


def router_counts(stack: LocalStack) -> dict[tuple[str, str], float]:
    result = stack.prometheus.query(
        f'sum by (route, code) (router_requests_total{{user_id="{USER}"}})'
    )
    return {(r.labels["route"], r.labels["code"]): r.value for r in result}


def grew(before: dict[tuple[str, str], float], after: dict[tuple[str, str], float]) -> dict:
    return {key: after[key] - before.get(key, 0.0) for key in after}


def test_load_sends_the_lab_mix_and_prometheus_counts_every_request(
    ops_stack: LocalStack, router_url: str
) -> None:
    before = router_counts(ops_stack)
    ran = run_ops(
        "load",
        "--url",
        router_url,
        "--rate",
        "26",
        "--duration",
        "5s",
        "--feedback-delay",
        "1",
    )
    assert ran.code == 0, ran.stderr
    sent = {
        (kind, code): int(n)
        for kind, code, n in re.findall(r"^\s+(\w+)\s+(\S+)\s+(\d+)$", ran.stdout, re.MULTILINE)
    }
    # 130 requests in the ratio 1 : 10 : 2, every one answered as its kind expects
    assert sent == {("health", "200"): 10, ("predict", "200"): 100, ("bad", "422"): 20}
    assert "feedback: 200 100" in ran.stdout  # each prediction's truth, a second later

    expected = {("predict", "200"): 100, ("predict", "422"): 20, ("feedback", "200"): 100}
    eventually(
        lambda: grew(before, router_counts(ops_stack)),
        lambda delta: all(delta.get(key) == n for key, n in expected.items()),
        30,
        "the router's counters in Prometheus grew by what load sent",
    )


def test_the_locustfile_drives_the_same_mix(
    ops_stack: LocalStack, router_url: str, tmp_path: Path
) -> None:
    before = router_counts(ops_stack)
    done = subprocess.run(
        [
            str(BIN_DIR / "locust"),
            "-f",
            str(LOCUSTFILE),
            "--headless",
            # 40 users draw about 300 tasks in 8 s: the 1-in-13 health check is all but sure
            # to be among them ((12/13)^300 < 1e-10; with 6 users it was missing 3 % of runs)
            "--users",
            "40",
            "--spawn-rate",
            "40",
            "--run-time",
            "8s",
            "--host",
            router_url,
            "--only-summary",
            "--csv",
            str(tmp_path / "locust"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    stats = (tmp_path / "locust_stats.csv").read_text()
    assert re.search(r"^GET,/healthz,\d+,0,", stats, re.MULTILINE), stats
    assert re.search(r"^POST,/predict \(bad input\),\d+,0,", stats, re.MULTILINE), stats
    assert re.search(r"^POST,/feedback,\d+,0,", stats, re.MULTILINE), stats
    kinds = {("predict", "200"), ("predict", "422"), ("feedback", "200")}
    eventually(  # Prometheus scrapes every 2 s: the last requests show up a little later
        lambda: grew(before, router_counts(ops_stack)),
        lambda delta: all(delta.get(kind, 0) > 0 for kind in kinds),
        30,
        "predictions, bad inputs and feedback from Locust in the router's counters",
    )


def test_load_against_nothing_is_one_line() -> None:
    ran = run_ops("load", "--url", f"http://127.0.0.1:{free_port()}", "--duration", "1s")
    assert ran.code == 2
    assert ran.stderr.count("\n") == 1, ran.stderr
    assert ran.stderr.startswith("modelmon-ops load: error: cannot reach the model server at ")


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["ab-test"],
        ["report", "--out", "{tmp}/report"],
        ["trigger-retrain", "--check-drift"],
        ["simulate-drift", "--level", "high", "--url", "{router}"],
    ],
    ids=lambda c: c[0],
)
def test_no_prometheus_is_one_line_for_every_command(
    command: list[str], router_url: str, tmp_path: Path
) -> None:
    args = [a.format(tmp=tmp_path, router=router_url) for a in command]
    ran = run_ops(*args, "--prometheus-url", f"http://127.0.0.1:{free_port()}")
    assert ran.code == 2, ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr
    assert ran.stderr.count("\n") == 1, ran.stderr
    assert "cannot reach Prometheus at http://127.0.0.1:" in ran.stderr
    assert not (tmp_path / "report" / "report.md").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["load", "--duration", "5x"], "duration '5x': expected e.g. 30s"),
        (["load", "--mix", "1:2"], "--mix '1:2': expected HEALTH:PREDICT:BAD"),
        (["load", "--url", "localhost:8080"], "--url 'localhost:8080': must be an http(s) URL"),
        (["trigger-retrain"], "say what to decide on: --check-drift, or --force-trigger"),
        (["trigger-retrain", "--check-drift", "--no-dry-run"], "needs the repository"),
        (["serve-webhook"], "--token-file is required"),
    ],
)
def test_bad_input_is_refused_in_one_line(args: list[str], message: str) -> None:
    ran = run_ops(*args)
    assert ran.code == 2, ran.stdout + ran.stderr
    assert message in ran.stderr
    assert ran.stderr.count("\n") == 1, ran.stderr
