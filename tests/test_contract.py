"""modelmon.contract is the one home of the names the parts share. The chart, the rules and the
dashboard must hold literals (YAML and JSON cannot import), so they are rendered here and compared
with the contract; the Python code must hold none, so its string literals are searched; and the
metrics the servers really expose are compared with the contract's declarations."""

from __future__ import annotations

import io
import json
import re
import tokenize
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from local_stack import manifests
from local_stack.toolchain import REPO_ROOT
from manifest_checks import STACK_OFF, VALUES_DIR, render_profile
from modelmon import artifact, contract
from modelmon.api import create_app
from modelmon.config import parse_settings
from modelmon.contract import (
    ACTION_LABEL,
    MEASURE_LABEL,
    RETRAIN_ACTION,
    THRESHOLD_ANNOTATION,
    VALUE_ANNOTATION,
    VARIANTS,
    Measure,
    RecordingRule,
    Variant,
)
from modelmon.main import build_service
from modelmon.ops.webhook import WebhookMetrics
from modelmon.router.metrics import RouterMetrics

ATTACH = VALUES_DIR / "users" / "user07.yaml"
PYTHON_OUTSIDE_TESTS = ("exporter/src", "harness", "bench", "loadtest")
CONTRACT_FILE = REPO_ROOT / "exporter" / "src" / "modelmon" / "contract.py"
# Series Prometheus makes itself, which rules and dashboards may read.
PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE"}
PROMQL_WORDS = {
    "sum",
    "max",
    "min",
    "by",
    "rate",
    "increase",
    "histogram_quantile",
    "absent",
    "or",
    "and",
    "on",
    "ignoring",
    "group_left",
    "vector",
    "le",
}


@pytest.fixture(scope="module")
def rendered(umbrella: Path) -> list[dict[str, Any]]:
    return render_profile(umbrella, [ATTACH], release="user07", set_values=STACK_OFF)


@pytest.fixture(scope="module")
def rules(rendered) -> list[dict[str, Any]]:
    [rule] = manifests.of_kind(rendered, "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def series_names() -> set[str]:
    return {name for metric in contract.METRICS for name in metric.series()}


def metric_names_in(promql: str) -> set[str]:
    """Identifiers of a PromQL expression that name series (not functions, labels or keywords)."""
    without_matchers = re.sub(r"\{[^}]*\}", "{}", promql)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_matchers)
    without_groupings = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", without_ranges)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_groupings))
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"e\d*", w)}


def test_the_chart_deploys_the_contracts_variants_by_the_same_names(rendered) -> None:
    exporters = [
        d
        for d in manifests.of_kind(rendered, "Deployment")
        if any(
            a.startswith("--variant=")
            for a in d["spec"]["template"]["spec"]["containers"][0]["args"]
        )
    ]
    variants = {
        a.removeprefix("--variant=")
        for d in exporters
        for a in d["spec"]["template"]["spec"]["containers"][0]["args"]
        if a.startswith("--variant=")
    }
    assert variants == set(VARIANTS)
    for deployment in exporters:
        name = deployment["metadata"]["name"]
        assert deployment["metadata"]["labels"]["modelmon.io/variant"] == name.rsplit("-", 1)[1]
    [router] = [
        d
        for d in manifests.of_kind(rendered, "Deployment")
        if d["metadata"]["name"].endswith("-router")
    ]
    flags = {a.split("=")[0] for a in router["spec"]["template"]["spec"]["containers"][0]["args"]}
    assert {f"--{v}-url" for v in VARIANTS} <= flags


def test_rules_read_only_contract_metrics_and_record_the_contracts_rules(rules) -> None:
    recorded = {r["record"] for r in rules if "record" in r}
    assert recorded == {str(rule) for rule in RecordingRule}
    known = series_names() | recorded | PROMETHEUS_OWN
    for rule in rules:
        unknown = metric_names_in(rule["expr"]) - known
        assert not unknown, f"{rule.get('record') or rule.get('alert')}: {unknown}"


def test_rules_on_model_series_keep_the_identity_labels(rules) -> None:
    for rule in rules:
        if "up{" in rule["expr"]:
            continue  # target series, which carry no model identity
        for grouping in re.findall(r"\bby\s*\(([^)]*)\)", rule["expr"]):
            labels = {label.strip() for label in grouping.split(",")}
            assert set(contract.IDENTITY_LABELS) <= labels, (rule, labels)


def test_the_dashboard_reads_only_contract_metrics(rules) -> None:
    [path] = (REPO_ROOT / "dashboards").glob("*.json")
    dashboard = json.loads(path.read_text())
    recorded = {r["record"] for r in rules if "record" in r}
    known = series_names() | recorded | PROMETHEUS_OWN
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    queries += [
        v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"
    ]
    for query in queries:
        names = metric_names_in(re.sub(r"\$\w+", "", query).replace("label_values", ""))
        names -= {contract.USER_LABEL}
        assert names <= known, (query, names - known)


def test_quality_alerts_carry_the_contracts_labels_and_judge_their_measure(rules) -> None:
    alerts = [r for r in rules if "alert" in r]
    asking = [a for a in alerts if ACTION_LABEL in a["labels"]]
    assert asking, "no alert asks for a retrain"
    for alert in asking:
        assert alert["labels"][ACTION_LABEL] == RETRAIN_ACTION
        measure = Measure(alert["labels"][MEASURE_LABEL])
        comparison = re.search(r"\s([<>])\s*[\d.]+$", alert["expr"])
        assert comparison, alert["expr"]
        assert comparison[1] == measure.worse_when, alert["alert"]
    for alert in alerts:
        if THRESHOLD_ANNOTATION in alert["annotations"]:
            assert alert["annotations"][VALUE_ANNOTATION] == "{{ $value }}"
            assert alert["expr"].endswith(alert["annotations"][THRESHOLD_ANNOTATION])


def test_the_retrain_route_matches_the_contracts_label(rendered) -> None:
    [config] = manifests.of_kind(rendered, "AlertmanagerConfig")
    [retrain, _catch_all] = config["spec"]["route"]["routes"]
    assert retrain["matchers"] == [
        {"name": ACTION_LABEL, "matchType": "=", "value": RETRAIN_ACTION}
    ]


def family_labels(registry: CollectorRegistry) -> dict[str, tuple[str, set[str]]]:
    """name → (type, label names) of what a registry exposes, as the contract names them."""
    found = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            name = sample.name
            for suffix in ("_bucket", "_sum", "_count"):
                if family.type in ("histogram", "summary") and name.endswith(suffix):
                    name = name.removesuffix(suffix)
            labels = set(sample.labels) - {"le"}
            found[name] = (family.type, found.get(name, ("", set()))[1] | labels)
    return found


def declared(metrics: tuple[contract.Metric, ...]) -> dict[str, tuple[str, set[str]]]:
    return {m.name: (m.type, {*m.labels, *m.info_keys}) for m in metrics}


def test_the_exporter_exposes_exactly_the_contracts_metrics(model_dir: Path) -> None:
    settings = parse_settings(["--model-path", str(model_dir / "model-v1.joblib")], {})
    service, registry = build_service(settings, artifact.load(settings.model_path))
    for prediction in service.predict(np.full((250, len(service.model.feature_names)), 0.5)):
        service.feedback(prediction.prediction_id, 0.1)
    with TestClient(create_app(service, registry)) as client:  # the HTTP metrics count requests
        assert client.get("/healthz").status_code == 200
    exposed = {
        name: spec
        for name, spec in family_labels(registry).items()
        if not name.startswith(("process_", "python_"))
    }
    assert exposed == declared(contract.EXPORTER_METRICS)


def test_the_router_and_the_webhook_expose_exactly_theirs() -> None:
    router = CollectorRegistry()
    metrics = RouterMetrics(router, "user07")
    for variant in VARIANTS:
        metrics.failovers[variant].inc()
    metrics.weight_errors.inc()
    metrics.weight.set(0.1)
    assert family_labels(router) == declared(contract.ROUTER_METRICS)
    webhook = CollectorRegistry()
    WebhookMetrics(webhook).notifications.inc()
    assert family_labels(webhook) == declared(contract.WEBHOOK_METRICS)


def test_a_prediction_id_names_its_variant_and_nothing_else_passes_for_one() -> None:
    for variant in VARIANTS:
        made = contract.new_prediction_id(variant)
        assert len(made) <= contract.PREDICTION_ID_MAX_LENGTH
        assert contract.variant_of_prediction(made) is variant
    for other in ("", "stable", "stable-", "blue-" + "0" * 32, "canary-XYZ", None, 7):
        assert contract.variant_of_prediction(other) is None


def test_the_error_body_is_the_shape_fastapi_gives_validation_errors() -> None:
    assert contract.error_body(["body", "x1"], "missing", "missing_feature") == {
        "detail": [{"loc": ["body", "x1"], "msg": "missing", "type": "missing_feature"}]
    }


def string_literals(path: Path) -> list[tuple[int, str]]:
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    kinds = {tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}
    return [(token.start[0], token.string) for token in tokens if token.type in kinds]


def literal_offences(path: Path) -> list[str]:
    metric_words = series_names() | {m.client_name for m in contract.METRICS if m.type != "info"}
    metric_words |= {str(rule) for rule in RecordingRule}
    pattern = re.compile(
        r"(?<![\w:])("
        + "|".join(sorted(map(re.escape, metric_words), key=len, reverse=True))
        + r")(?![\w:])"
    )
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path.name
    offences = []
    for line, text in string_literals(path):
        body = re.sub(r"^[a-zA-Z]*(['\"]{1,3})", "", text).rstrip("'\"")
        if body in {str(v) for v in VARIANTS}:
            offences.append(f"{shown}:{line}: variant literal {text}")
        for match in pattern.finditer(body):
            offences.append(f"{shown}:{line}: metric name {match[1]}")
    return offences


def test_no_python_outside_the_contract_and_the_tests_spells_a_metric_or_a_variant() -> None:
    files = [
        path
        for folder in PYTHON_OUTSIDE_TESTS
        for path in sorted((REPO_ROOT / folder).rglob("*.py"))
        if path != CONTRACT_FILE
    ]
    assert len(files) > 40
    offences = [offence for path in files for offence in literal_offences(path)]
    assert not offences, "\n".join(offences)


def test_the_search_finds_what_it_is_meant_to_find(tmp_path: Path) -> None:
    """The search above must be able to fail: a hand-written name and variant are caught."""
    sample = tmp_path / "sample.py"
    sample.write_text('NAME = "model_prediction_total"\nSIDE = "canary"\nQ = f"{x}model:mae{{}}"\n')
    offences = literal_offences(sample)
    assert len(offences) == 3, offences
    assert Variant.CANARY in offences[1]


def test_the_readme_lists_every_metric_of_the_contract_and_no_other() -> None:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## The model and its metrics")[1].split("\n## ")[0]
    named = set(re.findall(r"`((?:model|router|modelmon|http)_[a-z0-9_]+)", section))
    named -= set(contract.IDENTITY_LABELS)
    assert named == {metric.name for metric in contract.METRICS}
