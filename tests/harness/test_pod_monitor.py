"""A release scraped through a PodMonitor instead of its ServiceMonitor, on the local stack as the
Prometheus Operator would scrape it: every pod a target, each with the `service` label the
chart's relabelings give it, so the alert rules and dashboards that match on it keep working."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_stack.stack import LocalStack, StackOptions
from support import eventually

RELEASE = "podmon"
POD_MONITOR = {
    "model-exporter.serviceMonitor.enabled": "false",
    "model-exporter.podMonitor.enabled": "true",
    "model-exporter.podMonitor.interval": "2s",
    "model-exporter.podMonitor.scrapeTimeout": "1s",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    options = StackOptions(
        release=RELEASE, workdir=tmp_path_factory.mktemp("podmon"), set_values=POD_MONITOR
    )
    with LocalStack(options) as running:
        yield running


def test_every_pod_is_a_target_labelled_with_the_service_in_front_of_it(stack: LocalStack) -> None:
    assert [o["kind"] for o in stack.objects if o["kind"].endswith("Monitor")] == ["PodMonitor"]
    expected = {
        (pod.name, service.name)
        for service in stack.services
        for pod in stack.pods
        if service.selector.items() <= pod.labels.items()
    }
    assert len(expected) == len(stack.pods) >= 3

    def up() -> set[tuple[str, str]]:
        return {
            (s.labels["pod"], s.labels.get("service", ""))
            for s in stack.prometheus.query(f'up{{namespace="{stack.options.namespace}"}} == 1')
        }

    eventually(up, lambda found: found == expected, 30, "every pod scraped, with its service")
    [job] = {s.labels["job"] for s in stack.prometheus.query("up")}
    assert job == f"{stack.options.namespace}/{RELEASE}-model-exporter", "the operator's job"


def test_the_exporter_down_rule_sees_the_pod_monitors_targets(stack: LocalStack) -> None:
    [rule] = [r for r in stack.prometheus.alert_rules() if r["name"] == "ModelExporterDown"]
    eventually(lambda: stack.prometheus.query("up"), bool, 30, "targets scraped")
    # Its absent(up{namespace, service}) half fires for a Service with no target: none here.
    assert stack.prometheus.query(rule["query"]) == []
    stack.scale(f"{RELEASE}-model-exporter-stable", 0)
    try:
        firing = eventually(
            lambda: stack.prometheus.query(rule["query"]),
            bool,
            30,
            "ModelExporterDown's expression, with the stable exporter scaled to zero",
        )
        assert {s.labels["service"] for s in firing} == {f"{RELEASE}-model-exporter-stable"}
    finally:
        stack.scale(f"{RELEASE}-model-exporter-stable", 1)
