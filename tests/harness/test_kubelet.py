"""The local stack's kubelet, kube-proxy and Prometheus-selection parts, each against the
behaviour of the real one (cited in their modules), with real processes where it matters."""

from __future__ import annotations

import logging
import socket
import sys
import time
from pathlib import Path

import pytest
import requests

from local_stack import manifests
from local_stack.backoff import RestartBackoff
from local_stack.kubelet import Kubelet
from local_stack.manifests import Action, Container, Probe, Workload
from local_stack.pods import LOOPBACK, PodRuntime, endpoints_of, free_port, plan_pods
from local_stack.probes import ProbeState
from local_stack.processes import Supervisor, wait_until
from local_stack.proxy import ServiceProxies
from local_stack.selection import selected, selections

# A web server whose /healthz answers 200 while the file named by HEALTH exists, else 500.
SERVER = """
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = os.path.exists(os.environ["HEALTH"])
        self.send_response(200 if ok else 500)
        self.end_headers()
        self.wfile.write(os.environ["NAME"].encode())
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[-1])), H).serve_forever()
"""


def test_the_back_off_restarts_at_once_then_doubles_from_10_s_to_5_minutes() -> None:
    backoff = RestartBackoff()
    delays = []
    finished = 0.0
    for _ in range(8):
        wait = backoff.delay(finished)
        delays.append(wait)
        finished += wait + 1  # the container runs a second, then exits again
    assert delays == [0, 10, 20, 40, 80, 160, 300, 300]
    # an exit more than 10 minutes after the last restart starts over
    assert backoff.delay(finished + 601) == 0


def test_a_probe_flips_only_after_its_threshold_in_a_row() -> None:
    probe = Probe(Action("httpGet", 80), period=5, success_threshold=2, failure_threshold=3)
    state = ProbeState(probe, started_at=0.0, passing=False)
    assert state.due(0.0)
    assert not state.record(0.0, True)
    assert not state.due(4.9)
    assert state.record(5.0, True), "two successes in a row"
    assert state.passing
    assert [state.record(t, False) for t in (10, 15)] == [False, False]
    assert not state.record(20, True), "a success in between starts the count again"
    assert [state.record(t, False) for t in (25, 30)] == [False, False]
    assert state.record(35, False)
    assert not state.passing


def web_workload(name: str, health: Path, **container: object) -> Workload:
    spec = Container(
        name="web",
        command=(sys.executable, "-c", SERVER),
        args=("--port", "8080"),
        env=(("HEALTH", str(health)), ("NAME", name)),
        ports={"http": 8080},
        readiness=Probe(Action("httpGet", "http", "/healthz"), period=0.2, failure_threshold=1),
        **container,  # type: ignore[arg-type]
    )
    return Workload(name, "ns", 1, {"app": name}, (spec,), termination_grace=5)


@pytest.fixture
def kubelet(tmp_path: Path):
    supervisor = Supervisor(tmp_path / "logs")
    runtime = PodRuntime(bin_dirs=[Path(sys.executable).parent], path_map={}, pod_env={})
    running = Kubelet(runtime, supervisor, lambda: None, backoff_initial=0.5)
    yield running
    running.terminate_all()
    supervisor.stop_all()


def test_a_container_that_exits_is_restarted_with_growing_back_off(kubelet, tmp_path) -> None:
    health = tmp_path / "healthy"
    health.touch()
    [pod] = plan_pods(web_workload("web", health))
    kubelet.run(pod)
    wait_until(lambda: kubelet.ready().get(pod.name), 10, describe="ready")
    gaps = []
    for expected in (1, 2, 3):
        assert pod.process is not None
        pid = pod.process.pid
        pod.process.signal(9)
        killed = time.monotonic()
        wait_until(
            lambda n=expected, old=pid: (
                kubelet.status(pod.name).restarts == n
                and kubelet.ready().get(pod.name)
                and pod.process is not None
                and pod.process.pid != old
            ),
            15,
            describe=f"restart {expected}",
        )
        gaps.append(time.monotonic() - killed)
    assert kubelet.status(pod.name).last_exit_code == -9
    assert gaps[1] >= 0.5, gaps  # the back-off (0.5 s here, 10 s on a node) doubles
    assert gaps[2] >= 1.0, gaps
    answer = requests.get(pod.url("http", "/healthz"), timeout=2)
    assert answer.text == "web", "restarted on the same pod and port"


def test_readiness_follows_the_probe_and_a_failed_liveness_probe_restarts(
    kubelet, tmp_path
) -> None:
    health = tmp_path / "healthy"
    health.touch()
    liveness = Probe(Action("httpGet", "http", "/healthz"), period=0.2, failure_threshold=2)
    [pod] = plan_pods(web_workload("live", health, liveness=liveness))
    kubelet.run(pod)
    wait_until(lambda: kubelet.ready().get(pod.name), 10, describe="ready")
    health.unlink()
    wait_until(lambda: not kubelet.ready().get(pod.name), 5, describe="not ready")
    wait_until(lambda: kubelet.status(pod.name).restarts >= 1, 10, describe="restarted")
    health.touch()
    wait_until(lambda: kubelet.ready().get(pod.name), 10, describe="ready again")


def test_a_deleted_pod_runs_its_pre_stop_hook_before_sigterm(kubelet, tmp_path) -> None:
    health = tmp_path / "healthy"
    health.touch()
    marker = tmp_path / "pre-stop-ran"
    hook = Action("exec", command=(sys.executable, "-c", f"open({str(marker)!r}, 'w')"))
    [pod] = plan_pods(web_workload("hooked", health, pre_stop=hook))
    kubelet.run(pod)
    wait_until(lambda: kubelet.ready().get(pod.name), 10, describe="ready")
    process = pod.process
    assert process is not None
    kubelet.terminate(pod.name)
    assert marker.exists(), "preStop ran"
    assert not process.alive()
    assert process.popen.returncode == -15, "stopped by SIGTERM, within its grace period"


def test_a_service_spreads_connections_over_ready_endpoints_and_refuses_without_one(
    tmp_path,
) -> None:
    supervisor = Supervisor(tmp_path / "logs")
    proxies = ServiceProxies()
    try:
        ports = []
        for name in ("a", "b"):
            port = free_port()
            supervisor.start(
                name, [sys.executable, "-c", SERVER, str(port)], env={"HEALTH": "/", "NAME": name}
            )
            ports.append(port)
        for port in ports:
            wait_until(lambda p=port: _answers(p), 10, describe="server up")
        listen = proxies.listen("ns/web/80")
        url = f"http://{LOOPBACK}:{listen}/"
        proxies.set_endpoints("ns/web/80", ports)
        time.sleep(0.1)
        seen = [
            requests.get(url, timeout=2, headers={"Connection": "close"}).text for _ in range(6)
        ]
        assert sorted(seen) == ["a", "a", "a", "b", "b", "b"], "round robin"
        proxies.set_endpoints("ns/web/80", [])
        time.sleep(0.1)
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=2)
    finally:
        proxies.close()
        supervisor.stop_all()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def test_endpoints_are_the_ports_of_the_pods_a_service_selects() -> None:
    service = manifests.Service(
        "web", "ns", {}, {"app": "web"}, (manifests.ServicePort("http", 80, "http"),)
    )
    pods = plan_pods(web_workload("web", Path("/x"))) + plan_pods(web_workload("other", Path("/x")))
    assert endpoints_of(service, 80, pods) == [pods[0].port("http")]


def monitor(name: str, labels: dict[str, str]) -> manifests.Manifest:
    return {
        "kind": "ServiceMonitor",
        "metadata": {"name": name, "namespace": "ns", "labels": labels},
    }


def test_the_stacks_selectors_take_only_what_kube_prometheus_stack_would(caplog) -> None:
    objects = [monitor("ours", {"release": "monitoring"}), monitor("stray", {"team": "x"})]
    default = selections({}, "monitoring")
    with caplog.at_level(logging.WARNING, logger="local_stack.selection"):
        taken = selected(objects, "ServiceMonitor", default)
    assert [o["metadata"]["name"] for o in taken] == ["ours"]
    assert "ServiceMonitor ns/stray is not selected" in caplog.text
    everything = selections(
        {"prometheus": {"prometheusSpec": {"serviceMonitorSelectorNilUsesHelmValues": False}}},
        "monitoring",
    )
    assert len(selected(objects, "ServiceMonitor", everything)) == 2
    by_team = selections(
        {
            "prometheus": {
                "prometheusSpec": {"serviceMonitorSelector": {"matchLabels": {"team": "x"}}}
            }
        },
        "monitoring",
    )
    assert [o["metadata"]["name"] for o in selected(objects, "ServiceMonitor", by_team)] == [
        "stray"
    ]
    other_namespace = selections(
        {
            "prometheus": {
                "prometheusSpec": {
                    "serviceMonitorNamespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "elsewhere"}
                    }
                }
            }
        },
        "monitoring",
    )
    assert selected(objects, "ServiceMonitor", other_namespace) == []
    with pytest.raises(manifests.ManifestError, match="knows namespaces by name only"):
        selections(
            {
                "prometheus": {
                    "prometheusSpec": {"ruleNamespaceSelector": {"matchLabels": {"a": "b"}}}
                }
            },
            "monitoring",
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"initContainers": [{"name": "init"}]}, "initContainers is not modelled"),
        (
            {"volumes": [{"name": "data", "hostPath": {"path": "/var/data"}}]},
            r"volume data \(hostPath\) is not modelled",
        ),
        ({"restartPolicy": "Never"}, "restart Always, not Never"),
    ],
)
def test_a_pod_spec_that_needs_what_is_not_modelled_is_refused(change, message) -> None:
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "command": ["x"]}], **change},
            }
        },
    }
    with pytest.raises(manifests.ManifestError, match=message):
        manifests.workloads([deployment])
