"""The rules the chart renders, checked and unit-tested by the real promtool.

For every alert, with the shipped thresholds and with overridden ones, input series put the
alert's recorded quantity just above its threshold (the alert must be silent before its `for`
and firing after it) and just below (silent throughout). The series are the exporter's own
counters, so the recording rules are tested on the way.

`promtool check rules` reads the rendered file whole. For the unit tests, descriptions that
print the alert's value ({{ $value | ... }}) and the `value` annotation are left out of the copy
under test, since promtool compares annotations to the letter and a rate's value is not exact;
the drift alert, on a gauge, keeps its `value`, compared to the digit. Summaries, thresholds and
labels (action and measure included) are compared in full, and so is the ModelExporterDown
description, which shows that {{ $labels }} survives Helm and expands.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from local_stack.toolchain import require
from manifest_checks import STACK_OFF, VALUES_DIR, render_profile
from modelmon.contract import LATENCY_BUCKETS, THRESHOLD_ANNOTATION, VALUE_ANNOTATION

NAMESPACE, USER = "kubeflow-user07", "user07"
LABELS = f'namespace="{NAMESPACE}",user_id="{USER}",variant="stable",model_version="1.0.0"'
ALERT_LABELS = {
    "namespace": NAMESPACE,
    "user_id": USER,
    "variant": "stable",
    "model_version": "1.0.0",
}
RATE = 60  # events per minute in the input series
OVERRIDES = {
    "rules.window": "2m",
    "rules.additionalLabels.team": "ml",
    "rules.alerts.ModelPerformanceDegraded.threshold": "0.3",
    "rules.alerts.ModelPerformanceDegraded.for": "2m",
    "rules.alerts.ModelR2Low.threshold": "0.85",
    "rules.alerts.ModelLatencyHigh.threshold": "0.05",
    "rules.alerts.ModelLatencyHigh.for": "3m",
    "rules.alerts.ModelErrorRateHigh.threshold": "0.05",
    "rules.alerts.ModelErrorRateHigh.severity": "warning",
    "rules.alerts.ModelAccuracyDropped.threshold": "0.9",
    "rules.alerts.ModelAccuracyDropped.for": "4m",
    "rules.alerts.ModelDriftDetected.threshold": "0.1",
    "rules.alerts.ModelExporterDown.for": "2m",
}


def counter(name: str, per_minute: float) -> dict[str, str]:
    return {"series": f"{name}{{{LABELS}}}", "values": f"0+{per_minute:.6g}x60"}


def gauge(name: str, value: float) -> dict[str, str]:
    return {"series": f"{name}{{{LABELS}}}", "values": f"{value:.6g}x60"}


def feedback(**per_feedback: float) -> list[dict[str, str]]:
    """Feedback counters growing by RATE per minute, each sum by RATE × its per-feedback value."""
    series = [counter("model_feedback_total", RATE)]
    for suffix, value in per_feedback.items():
        series.append(counter(f"model_feedback_{suffix}_total", RATE * value))
    return series


def latency(threshold: float, above: bool) -> list[dict[str, str]]:
    """Every observation in the bucket just above (or at most) the threshold."""
    bounds = [*LATENCY_BUCKETS, float("inf")]
    if threshold not in LATENCY_BUCKETS:
        pytest.fail(f"latency threshold {threshold} is not a bucket bound: {LATENCY_BUCKETS}")
    index = bounds.index(threshold) + (1 if above else 0)
    name = "model_prediction_latency_seconds_bucket"
    return [
        {
            "series": f'{name}{{{LABELS},le="{"+Inf" if b == float("inf") else f"{b:g}"}"}}',
            "values": f"0+{RATE if position >= index else 0}x60",
        }
        for position, b in enumerate(bounds)
    ]


def up(variant: str, value: int) -> dict[str, str]:
    service = f"{USER}-model-exporter-{variant}"
    return {
        "series": f'up{{namespace="{NAMESPACE}",service="{service}",pod="{service}-0",job="x"}}',
        "values": f"{value}x60",
    }


def exporter_down_tests(
    name: str, settings: dict[str, Any], extra_labels: dict[str, str]
) -> list[dict[str, Any]]:
    """A failing target fires with its pod; a Service with no target at all (scaled to zero)
    fires through absent(), without one; all targets up is silent."""
    hold = minutes(settings["for"])
    common = {"user_id": USER, "severity": settings["labels"]["severity"], **extra_labels}
    summary = "Prometheus cannot scrape a model exporter"
    stable, canary = (f"{USER}-model-exporter-{v}" for v in ("stable", "canary"))
    failing = {
        "exp_labels": {"namespace": NAMESPACE, "service": stable, "pod": f"{stable}-0", **common},
        "exp_annotations": {
            "summary": summary,
            "description": f"{stable}-0 of {stable} in {NAMESPACE} has not answered Prometheus's "
            "scrapes, or has no pod left to scrape: its predictions and metrics are unavailable.",
        },
    }
    gone = {
        "exp_labels": {"namespace": NAMESPACE, "service": canary, **common},
        "exp_annotations": {
            "summary": summary,
            "description": f"{canary} in {NAMESPACE} has not answered Prometheus's scrapes, or "
            "has no pod left to scrape: its predictions and metrics are unavailable.",
        },
    }

    def case(title: str, series: list[dict[str, str]], fired: list[dict[str, Any]]) -> dict:
        return {
            "name": f"{name}: {title}",
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                {"eval_time": f"{hold - 1}m", "alertname": name, "exp_alerts": []},
                {"eval_time": f"{hold + 1}m", "alertname": name, "exp_alerts": fired},
            ],
        }

    return [
        case(
            f"a failing target fires after {settings['for']}",
            [up("stable", 0), up("canary", 1)],
            [failing],
        ),
        case("a Service with no target fires too", [up("stable", 1)], [gone]),
        case("every target up is silent", [up("stable", 1), up("canary", 1)], []),
    ]


# alert → (input series with the quantity at `value`, value just above, value just below)
SeriesFor = Callable[[float, bool], list[dict[str, str]]]
CASES: dict[str, SeriesFor] = {
    "ModelPerformanceDegraded": lambda t, above: feedback(
        absolute_error=t * (1.05 if above else 0.95)
    ),
    # R² = 1 − SSE/SST; with Σy = 0 and Σy² = n, SST = n and R² = 1 − mean squared error.
    "ModelR2Low": lambda t, above: feedback(
        target_positive=0.0,
        target_negative=0.0,
        target_squared=1.0,
        squared_error=1 - t * (0.95 if above else 1.05),
    ),
    "ModelLatencyHigh": lambda t, above: latency(t, above),
    "ModelErrorRateHigh": lambda t, above: [
        counter("model_prediction_errors_total", RATE * t * (1.05 if above else 0.95)),
        counter("model_prediction_total", RATE * (1 - t * (1.05 if above else 0.95))),
    ],
    "ModelAccuracyDropped": lambda t, above: feedback(
        within_tolerance=t * (0.95 if above else 1.05)
    ),
    "ModelDriftDetected": lambda t, above: [
        gauge("model_drift_score", t * (1.05 if above else 0.95))
    ],
}


def minutes(duration: str) -> int:
    assert duration.endswith("m"), duration
    return int(duration[:-1])


def nested(dotted: dict[str, str]) -> dict[str, Any]:
    """{"a.b": "0.3"} → {"a": {"b": 0.3}}, numbers typed: helm --set keeps 0.3 a string."""
    tree: dict[str, Any] = {}
    for key, text in dotted.items():
        *parents, leaf = key.split(".")
        node = tree
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = yaml.safe_load(text)
    return tree


def render_rules(
    umbrella: Path, overrides: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    override_file = umbrella.parent / "rule-overrides.yaml"
    override_file.write_text(yaml.safe_dump(nested(overrides)))
    objects = render_profile(
        umbrella,
        [VALUES_DIR / "users" / "user07.yaml", override_file],
        release=USER,
        namespace=NAMESPACE,
        set_values=STACK_OFF,
    )
    [rule] = [o for o in objects if o["kind"] == "PrometheusRule"]
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    return {"groups": rule["spec"]["groups"]}, alerts


def alert_tests(alerts: dict[str, Any], extra_labels: dict[str, str]) -> list[dict[str, Any]]:
    tests = []
    for name, settings in alerts.items():
        hold = minutes(settings["for"])
        labels = {**ALERT_LABELS, **settings["labels"]}
        if name == "ModelExporterDown":
            tests.extend(exporter_down_tests(name, settings, extra_labels))
            continue
        threshold = float(settings["expr"].rsplit(" ", 1)[1])
        annotations = settings["annotations"]
        assert float(annotations[THRESHOLD_ANNOTATION]) == threshold
        expected = {
            "exp_labels": labels,
            "exp_annotations": {key: annotations[key] for key in ("summary", THRESHOLD_ANNOTATION)},
        }
        if name == "ModelDriftDetected":  # a gauge: its value is the input's, to the digit
            shown = CASES[name](threshold, True)[0]["values"].split("x")[0]
            expected["exp_annotations"][VALUE_ANNOTATION] = repr(float(shown))
        tests.append(
            {
                "name": f"{name} fires after {settings['for']} just past {threshold}",
                "interval": "1m",
                "input_series": CASES[name](threshold, True),
                "alert_rule_test": [
                    {"eval_time": f"{hold - 1}m", "alertname": name, "exp_alerts": []},
                    {"eval_time": f"{hold + 2}m", "alertname": name, "exp_alerts": [expected]},
                ],
            }
        )
        tests.append(
            {
                "name": f"{name} stays silent just short of {threshold}",
                "interval": "1m",
                "input_series": CASES[name](threshold, False),
                "alert_rule_test": [
                    {"eval_time": f"{hold + 2}m", "alertname": name, "exp_alerts": []},
                    {"eval_time": "50m", "alertname": name, "exp_alerts": []},
                ],
            }
        )
    return tests


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(require("promtool")), *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("overrides", [{}, OVERRIDES], ids=["shipped thresholds", "overridden"])
def test_rules_pass_promtool_check_and_unit_tests(umbrella, tmp_path, overrides):
    rule_file, alerts = render_rules(umbrella, overrides)
    assert set(alerts) == {*CASES, "ModelExporterDown"}
    (tmp_path / "rendered.yaml").write_text(yaml.safe_dump(rule_file, sort_keys=False))
    checked = promtool("check", "rules", str(tmp_path / "rendered.yaml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alerts) + 7} rules found" in checked.stdout
    for group in rule_file["groups"]:
        for rule in group["rules"]:
            annotations = rule.get("annotations", {})
            if "{{ $value" in annotations.get("description", ""):
                del annotations["description"]
            if rule.get("alert") != "ModelDriftDetected":
                annotations.pop(VALUE_ANNOTATION, None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_file, sort_keys=False))
    extra = {"team": "ml"} if overrides else {}
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": alert_tests(alerts, extra),
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool("test", "rules", str(tmp_path / "tests.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_overrides_reach_the_rendered_rules(umbrella):
    _, alerts = render_rules(umbrella, OVERRIDES)
    assert alerts["ModelPerformanceDegraded"]["expr"].endswith("> 0.3")
    assert alerts["ModelPerformanceDegraded"]["for"] == "2m"
    assert alerts["ModelErrorRateHigh"]["labels"] == {
        "severity": "warning",
        "team": "ml",
        "user_id": USER,
    }
    _, shipped = render_rules(umbrella, {})
    assert shipped["ModelPerformanceDegraded"]["expr"].endswith("> 0.4")
    assert shipped["ModelAccuracyDropped"]["for"] == "10m"


def test_a_disabled_alert_is_not_rendered(umbrella):
    _, alerts = render_rules(umbrella, {"rules.alerts.ModelDriftDetected.enabled": "false"})
    assert "ModelDriftDetected" not in alerts
    assert "ModelR2Low" in alerts
