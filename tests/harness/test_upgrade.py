"""The local stack's life cycle. `upgrade` behaves as `helm upgrade` on a cluster: a changed
container rolls out a new pod, and Prometheus reloads only when its rules change, as the
operator's config-reloader reloads only on a changed file (a reload drops alert notifications
for a few seconds). A start that fails stops what it started."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import psutil
import pytest

from local_stack.kubelet import Kubelet
from local_stack.manifests import ManifestError
from local_stack.pods import LocalPod
from local_stack.stack import LocalStack, StackOptions

RELEASE = "upgrade"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    options = StackOptions(release=RELEASE, workdir=tmp_path_factory.mktemp("upgrade-stack"))
    with LocalStack(options) as running:
        yield running


def last_config_time(stack: LocalStack) -> str:
    return str(stack.prometheus.runtime_info()["lastConfigTime"])


def latency_alert_expr(stack: LocalStack) -> str:
    [rule] = [
        rule
        for group in stack.prometheus.rule_groups()
        for rule in group["rules"]
        if rule["name"] == "ModelLatencyHigh"
    ]
    return str(rule["query"])


def test_a_changed_container_rolls_out_a_new_pod_and_leaves_prometheus_alone(
    stack: LocalStack,
) -> None:
    workload = f"{RELEASE}-model-exporter-canary"
    [old] = stack.pods_of(workload)
    others = {p.name: p.process for p in stack.pods if p.workload != workload}
    config_before = last_config_time(stack)
    replaced = stack.upgrade({"model-exporter.canary.faultInjection.latencySeconds": "1"})
    assert replaced == [old.name]
    [new] = stack.pods_of(workload)
    assert new.name != old.name, "a Deployment's new pod is a new pod"
    assert "--inject-latency-seconds=1" in new.container.args
    assert old.process is None, "the old pod is gone"
    assert {p.name: p.process for p in stack.pods if p.workload != workload} == others
    assert last_config_time(stack) == config_before
    assert stack.kubelet.ready()[new.name]


def test_a_changed_rule_reloads_prometheus_with_it(stack: LocalStack) -> None:
    assert latency_alert_expr(stack).endswith("> 0.1")
    config_before = last_config_time(stack)
    restarted = stack.upgrade({"rules.alerts.ModelLatencyHigh.threshold": "2"})
    assert restarted == []
    assert latency_alert_expr(stack).endswith("> 2")
    assert last_config_time(stack) != config_before


def test_a_stack_that_fails_to_start_leaves_no_process_port_or_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    started: list[LocalPod] = []
    run = Kubelet.run

    def run_and_remember(kubelet: Kubelet, pod: LocalPod) -> None:
        started.append(pod)
        run(kubelet, pod)

    monkeypatch.setattr(Kubelet, "run", run_and_remember)
    options = StackOptions(
        release="broken",
        set_values={"model-exporter.canary.modelPath": "/opt/modelmon/models/missing.joblib"},
    )
    stack = LocalStack(options)
    with pytest.raises(ManifestError, match=r"pod broken-model-exporter-canary-0 exited"), stack:
        pass  # pragma: no cover - the start fails
    assert started, "the stack started no pod before failing"
    assert stack.pods == [], "every pod was deleted"
    left = [
        child
        for child in psutil.Process().children(recursive=True)
        if child.pid not in before and child.status() != psutil.STATUS_ZOMBIE
    ]
    assert not left, f"left behind: {[child.cmdline() for child in left]}"
    for pod in started:
        for port in pod.host_ports.values():
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port))
    assert not stack.workdir.exists()
