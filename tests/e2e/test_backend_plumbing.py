"""The kind backend's own plumbing that can be checked without a cluster: it reads deliveries
from the log of a real serve-webhook, and it says why it skips."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import yaml

from backends import alerts_in_webhook_log, reason_to_skip_kind
from local_stack.pods import free_port
from local_stack.processes import Supervisor, wait_until
from support import start_serve_webhook

TOKEN = "k" * 32


def test_deliveries_are_read_back_from_a_real_webhook_log(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    supervisor = Supervisor(tmp_path / "logs")
    process, url = start_serve_webhook(supervisor, token_file)
    sent = [
        {
            "status": "firing",
            "labels": {"alertname": "ModelErrorRateHigh", "user_id": "user01"},
            "startsAt": "2026-11-23T13:20:01.123456789Z",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "ModelLatencyHigh", "variant": "canary"},
            "startsAt": "2026-11-23T13:21:00Z",
        },
    ]
    try:
        answer = requests.post(
            f"{url}/alerts",
            json={"version": "4", "alerts": sent},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        assert answer.status_code == 200, answer.text
        wait_until(lambda: "ModelLatencyHigh" in process.log_path.read_text(), 10)
    finally:
        supervisor.stop_all()
    log = process.log_path.read_text()
    assert alerts_in_webhook_log(log, "ModelErrorRateHigh", "firing") == [sent[0]]
    assert alerts_in_webhook_log(log, "ModelLatencyHigh", "resolved") == [sent[1]]
    assert alerts_in_webhook_log(log, "ModelErrorRateHigh", "resolved") == []


def test_without_a_cluster_the_kind_backend_names_the_reason(
    pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    if pytestconfig.getoption("kube_config", default=None):
        pytest.skip("a kubeconfig was given on the command line")
    reason = reason_to_skip_kind(pytestconfig)
    assert reason is not None
    assert reason.startswith("no Kubernetes cluster")


def kubeconfig_for(server: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": server}}],
            "users": [{"name": "u", "user": {"token": "not-a-secret"}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (kubeconfig_for(f"https://127.0.0.1:{free_port()}"), "does not answer: "),
        ("clusters: [", "is not a kubeconfig: "),
        ("just a line of text", "is not a kubeconfig: "),
    ],
    ids=["nothing-listening", "broken-yaml", "not-a-mapping"],
)
def test_a_kubeconfig_that_leads_nowhere_is_a_reason_on_one_line(
    pytestconfig: pytest.Config,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    content: str,
    reason: str,
) -> None:
    if pytestconfig.getoption("kube_config", default=None):
        pytest.skip("a kubeconfig was given on the command line")
    path = tmp_path / "kubeconfig"
    path.write_text(content)
    monkeypatch.setenv("KUBECONFIG", str(path))
    found = reason_to_skip_kind(pytestconfig)
    assert found is not None
    assert f"{path} {reason}" in found
    assert "\n" not in found
