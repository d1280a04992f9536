"""ab-test and report against the local stack, on traffic that modelmon-ops load sent."""

from __future__ import annotations

import base64
import json
import re
import time
from html import escape as html_escape
from pathlib import Path

import pytest
import yaml
from starlette.testclient import TestClient

from local_stack import chart
from local_stack.stack import LocalStack
from local_stack.toolchain import REPO_ROOT
from modelmon.gate.decision import GatePolicy, Verdict
from modelmon.gate.readings import read_and_judge
from modelmon.ops.commands.delivery import gate_reader
from modelmon.ops.gate_webhook import Hook, StepClock, create_gate_app
from modelmon.ops.prometheus import PrometheusAPI, Scope
from modelmon.ops.readings import read_quality
from opstool import NAMESPACE, RELEASE, USER, Ran, run_ops
from support import eventually

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def undrifted_traffic(ops_stack: LocalStack, router_url: str) -> dict[str, int]:
    """1,000 undrifted predictions with feedback, half to each variant; what the load reported."""
    started = time.monotonic()
    ran = run_ops(
        "load",
        "--url",
        router_url,
        "--prometheus-url",
        ops_stack.prometheus.url,
        "--mix",
        "0:1:0",
        "--rate",
        "50",
        "--duration",
        "20s",
        "--concurrency",
        "8",
    )
    assert ran.code == 0, ran.stderr
    served = re.search(r"predictions served by: (.*)", ran.stdout)
    assert served, ran.stdout
    counts = {name: int(n) for name, n in re.findall(r"(\w+) (\d+)", served[1])}
    time.sleep(5)  # two scrapes and two rule evaluations
    counts["seconds"] = int(time.monotonic() - started) + 5
    return counts


def ab_test(stack: LocalStack, window: str, min_samples: int) -> Ran:
    return run_ops(
        "ab-test",
        *("--prometheus-url", stack.prometheus.url, "--user", USER),
        *("--window", window, "--min-samples", str(min_samples)),
    )


def test_ab_test_finds_the_canary_model_better_on_real_feedback(
    ops_stack: LocalStack, undrifted_traffic: dict[str, int]
) -> None:
    # model v2 (canary) has a holdout MAE of 0.20 against v1's 0.25: with ~500 samples each,
    # Welch's test separates them at far below α = 0.05
    ran = ab_test(ops_stack, f"{undrifted_traffic['seconds'] + 10}s", min_samples=200)
    print(ran.stdout)  # the p-value and effect size, for the record (pytest -s)
    assert ran.code == 0, ran.stdout + ran.stderr
    assert "verdict: canary better" in ran.stdout
    rows = dict(re.findall(r"^\s+(stable|canary)\s+(\d+)\s+[\d.]+", ran.stdout, re.MULTILINE))
    # increase() extrapolates to the window's edges, by up to one scrape interval (2 s) at each
    # end: at most window / (window - 4 s) over what was sent.
    window = undrifted_traffic["seconds"] + 10
    for variant in ("stable", "canary"):
        sent = undrifted_traffic[variant]
        seen = int(rows[variant])
        assert sent - 3 <= seen <= sent * window / (window - 4) + 3, (variant, sent, ran.stdout)
    p_value = float(re.search(r"p = ([\d.e-]+)", ran.stdout)[1])  # type: ignore[index]
    assert p_value < 0.05


def gate(stack: LocalStack, window: str, *flags: str) -> Ran:
    return run_ops(
        "gate",
        *("--prometheus-url", stack.prometheus.url, "--user", USER, "--window", window),
        *flags,
    )


def test_the_gate_promotes_the_better_canary_and_says_why(
    ops_stack: LocalStack, undrifted_traffic: dict[str, int]
) -> None:
    # v2's MAE is 0.05 below v1's; ~500 labels each put the confidence sequence's upper end
    # below the 0.02 non-inferiority margin
    ran = gate(ops_stack, f"{undrifted_traffic['seconds'] + 10}s")
    print(ran.stdout)
    assert ran.code == 0, ran.stdout + ran.stderr
    verdict = re.search(r"^verdict: promote: .*MAE canary − stable (-0\.\d+) \[", ran.stdout, re.M)
    assert verdict, ran.stdout
    assert -0.09 < float(verdict[1]) < -0.01
    labels = dict(re.findall(r"^\s+(stable|canary)\s+\d+\s+(\d+)\s+(?:100|9\d)%", ran.stdout, re.M))
    assert labels.keys() == {"stable", "canary"}, ran.stdout


def test_the_gate_holds_until_enough_labels_have_come(
    ops_stack: LocalStack, undrifted_traffic: dict[str, int]
) -> None:
    window = f"{undrifted_traffic['seconds'] + 10}s"
    waiting = gate(ops_stack, window, "--min-feedback", "100000")
    assert waiting.code == 3, waiting.stdout + waiting.stderr
    assert "verdict: hold: quality not judged yet" in waiting.stdout
    refused = gate(ops_stack, window, "--min-coverage", "1.5")
    assert refused.code == 2
    assert "min_coverage must be within [0, 1]" in refused.stderr


VERDICT_VALUE = {Verdict.PROMOTE: 1.0, Verdict.HOLD: 0.0, Verdict.ROLLBACK: -1.0}


def engine_query(engine: str, window: str, gate: dict[str, object], tmp_path: Path) -> str:
    """The gate's query as the chart renders it for an engine (its AnalysisTemplate or its
    MetricTemplate), for this release and gate values."""
    values = tmp_path / "gate.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "userId": USER,
                "gatewayAPI": {"enabled": True},
                "delivery": {"engine": engine, "gate": {"window": window, **gate}},
            }
        )
    )
    objects = chart.render(
        chart.EXPORTER_CHART, release=RELEASE, namespace=NAMESPACE, values_files=[values]
    )
    if engine == "argoRollouts":
        [template] = [o for o in objects if o["kind"] == "AnalysisTemplate"]
        return str(template["spec"]["metrics"][0]["provider"]["prometheus"]["query"])
    [template] = [o for o in objects if o["kind"] == "MetricTemplate"]
    return str(template["spec"]["query"])


GATE_CASES = pytest.mark.parametrize(
    ("gate", "expected"),
    [
        ({}, Verdict.PROMOTE),
        ({"minFeedback": 100000}, Verdict.HOLD),
        ({"maxLatencyP95Seconds": 1e-6}, Verdict.ROLLBACK),
    ],
    ids=["promote", "hold", "rollback"],
)


def policy_of_values(gate: dict[str, object]) -> GatePolicy:
    return GatePolicy(
        min_feedback=int(gate.get("minFeedback", GatePolicy.min_feedback)),
        max_latency_p95_seconds=float(
            gate.get("maxLatencyP95Seconds", GatePolicy.max_latency_p95_seconds)
        ),
    )


@GATE_CASES
@pytest.mark.parametrize("engine", ["argoRollouts", "flagger"])
def test_each_engines_query_gives_the_gates_verdict_on_the_local_prometheus(
    ops_stack: LocalStack, undrifted_traffic: dict[str, int], gate, expected, engine, tmp_path
) -> None:
    """The engine's query as the chart renders it, against what modelmon-ops gate reads and
    judges, at one instant, on the same counters. Neither engine changes the text: it holds no
    Argo Rollouts {{args}} and no Flagger template action."""
    api = PrometheusAPI(ops_stack.prometheus.url)
    window, at = f"{undrifted_traffic['seconds'] + 10}s", time.time()
    reading = read_and_judge(
        api, Scope(USER, NAMESPACE).matchers(), window, "0s", policy_of_values(gate), at
    )
    assert reading.decision.verdict is expected, reading.decision.line()
    query = engine_query(engine, window, gate, tmp_path)
    assert "{{" not in query
    assert api.value(query, at) == VERDICT_VALUE[expected], reading.decision.line()


@GATE_CASES
def test_the_gate_server_answers_flagger_as_the_gate_judges_the_local_prometheus(
    ops_stack: LocalStack, undrifted_traffic: dict[str, int], gate, expected
) -> None:
    """modelmon-ops serve-gate's app on the local stack's Prometheus: promotion goes on only on
    a promote verdict; the reason it gives is the verdict's own line."""
    api = PrometheusAPI(ops_stack.prometheus.url)
    window = undrifted_traffic["seconds"] + 10
    read = gate_reader(api, Scope(USER, NAMESPACE).matchers(), 0, policy_of_values(gate))
    client = TestClient(create_gate_app(lambda: read(window), StepClock(0.0)))
    response = client.post(f"/flagger/{Hook.PROMOTION}", json={"name": RELEASE, "checksum": "1"})
    answered = response.json()
    assert response.status_code == (200 if expected is Verdict.PROMOTE else 412), answered
    assert answered["reason"].startswith(f"{expected}:"), answered


def test_ab_test_refuses_a_verdict_below_the_minimum_sample(
    ops_stack: LocalStack, undrifted_traffic: dict[str, int]
) -> None:
    ran = ab_test(ops_stack, "5m", min_samples=100000)
    assert ran.code == 3, ran.stdout + ran.stderr
    assert "verdict: none, too few feedback samples" in ran.stdout
    assert "need 100000 each" in ran.stdout


@pytest.fixture(scope="module")
def recent_labels(
    ops_stack: LocalStack, router_url: str, undrifted_traffic: dict[str, int]
) -> None:
    """The report's quality now is the rules' 20 s window: 4 s of labelled predictions just
    before it, however long the tests between the module's first load and the report took,
    until Prometheus has both variants' MAE."""
    ran = run_ops(
        "load",
        *("--url", router_url, "--prometheus-url", ops_stack.prometheus.url, "--mix", "0:1:0"),
        *("--rate", "50", "--duration", "4s", "--concurrency", "8"),
    )
    assert ran.code == 0, ran.stderr
    api = PrometheusAPI(ops_stack.prometheus.url)
    eventually(
        lambda: read_quality(api, Scope(USER, NAMESPACE)).mae,
        lambda mae: set(mae) == {"stable", "canary"},
        15,
        "both variants' MAE over the rules' window",
    )


def test_report_writes_the_plots_and_one_page(
    ops_stack: LocalStack, recent_labels: None, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    ran = run_ops(
        "report",
        "--prometheus-url",
        ops_stack.prometheus.url,
        "--user",
        USER,
        "--since",
        "3m",
        "--rate-window",
        "20s",
        "--out",
        str(out),
    )
    assert ran.code == 0, ran.stderr
    page = (out / "report.md").read_text()
    [dashboard] = (REPO_ROOT / "dashboards").glob("*.json")
    panels = [p for p in json.loads(dashboard.read_text())["panels"] if p.get("targets")]
    plotted = [p for p in panels if p["type"] == "timeseries"]
    assert len(plotted) >= 7
    for panel in panels:
        assert f"### {panel['title']}" in page, panel["title"]
    images = sorted(out.glob("panel-*.png"))
    assert len(images) == len(plotted)
    for png in images:
        assert png.read_bytes()[:8] == PNG_SIGNATURE, png.name
        assert png.stat().st_size > 5_000, png.name
        assert f"]({png.name})" in page
    # a table panel, read at the end of the range: one row per variant
    table = page.split("### Stable vs canary")[1].split("###")[0]
    for variant, version in (("stable", "1.0.0"), ("canary", "2.0.0")):
        row = rf"^\| model_version={re.escape(version)}, variant={variant} \| [\d.e-]+ \|$"
        assert re.search(row, table, re.MULTILINE), table
    quality = re.findall(r"^\s+(stable|canary)\s+([\d.]+)\s+([\d.-]+)", page, re.MULTILINE)
    assert {variant for variant, _mae, _r2 in quality} == {"stable", "canary"}, page
    for _variant, mae, _r2 in quality:
        assert 0.1 < float(mae) < 0.4  # undrifted traffic: near the holdout MAE
    assert "ModelPerformanceDegraded" in page
    assert re.search(r"\| stable \| [\d.]+ \| x\d+ [\d.]+", page), page
    assert re.search(r"^\| x\d+ \| [\d.]+ \| [\d.]+ \|$", page, re.MULTILINE), page  # per feature
    assert "the drift alert's threshold is 0.25; over it: none" in page


def test_report_draws_the_drift_over_time_and_the_alert_timeline_and_writes_html(
    ops_stack: LocalStack, undrifted_traffic: dict[str, int], tmp_path: Path
) -> None:
    out = tmp_path / "report"
    ran = run_ops(
        "report",
        *("--prometheus-url", ops_stack.prometheus.url, "--user", USER, "--since", "3m"),
        *("--rate-window", "20s", "--out", str(out)),
    )
    assert ran.code == 0, ran.stderr
    assert ran.stdout.strip() == f"wrote {out / 'report.md'} and {out / 'report.html'}"
    page = (out / "report.md").read_text()
    drift = page.split("### Drift over time")[1].split("\n## ")[0]
    assert "](drift-over-time.png)" in drift
    timeline = page.split("### Alert timeline")[1].split("\n## ")[0]
    assert "](alerts-timeline.png)" in timeline
    for png in ("drift-over-time.png", "alerts-timeline.png"):
        data = (out / png).read_bytes()
        assert data[:8] == PNG_SIGNATURE, png
        assert len(data) > 10_000, png
    # one row per alert rule of the user: the figure's height grows with them (IHDR, in pixels)
    rules = re.findall(r"^  (Model\w+)\s+condition", page, re.MULTILINE)
    assert len(rules) >= 7, page
    height = int.from_bytes((out / "alerts-timeline.png").read_bytes()[20:24], "big")
    assert height >= 42 * len(rules), height
    assert "| alert | user | where | state | active since | value |" in timeline
    # not the whole suite's own alerts: no other user's rows
    assert not re.search(r"\[user(?!01)\d+", timeline), timeline
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert f"<h1>Model report: {USER}</h1>" in html
    embedded = re.findall(
        r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', html
    )
    assert len(embedded) == page.count("![") >= 9
    assert all(base64.b64decode(data)[:8] == PNG_SIGNATURE for _alt, data in embedded)
    for heading in re.findall(r"^#+ (.+)$", page, re.MULTILINE):
        assert html_escape(heading) in html, heading
    assert "<td>stable</td>" in html
