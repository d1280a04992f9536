"""modelmon-ops promote against the kind cluster, as cd-deploy.yaml runs it: the real command,
`helm upgrade` moving the weight, its state in a ConfigMap, the gate asking the stack's
Prometheus. A good canary reaches 100 %, a biased one is rolled back to 0 %.

Kind only: the local stack is not a kube-apiserver that helm and kubectl could talk to (the same
loop runs on the local stack in tests/ops/test_promote.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import requests
import yaml

from backends import HERE, KindBackend
from modelmon.ops.promotion import EXIT_CODES, Phase
from traffic import labelled_load

pytestmark = pytest.mark.kind

BIN_DIR = Path(sys.executable).parent
USER = "user01"  # values/kind.yaml
VALUES = [HERE.parent.parent / "values" / "kind.yaml", HERE / "values-kind-e2e.yaml"]


def traffic(router_url: str) -> AbstractContextManager[None]:
    return labelled_load(router_url, 50)


def promote(backend: KindBackend, revision: str, *values: Path) -> subprocess.CompletedProcess[str]:
    command = [str(BIN_DIR / "modelmon-ops"), "promote", "--revision", revision]
    command += ["--prometheus-url", backend.prometheus.url, "--user", USER]
    command += ["--namespace", backend.namespace, "--release", backend.release]
    command += ["--chart", str(backend.chart)]
    command += [arg for path in (*VALUES, *values) for arg in ("--values", str(path))]
    command += ["--steps", "10,50", "--soak", "30s", "--interval", "10s", "--max-hold", "8m"]
    command += ["--min-feedback", "100"]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
        env={**os.environ, "KUBECONFIG": backend.kube_config},
    )


@pytest.fixture
def kind(kind_backend: KindBackend) -> Iterator[KindBackend]:
    yield kind_backend
    # as the other kind tests expect the release: the canary at the chart's weight, unbiased
    kind_backend.upgrade(
        {
            "model-exporter.canary.weight": "10",
            "model-exporter.canary.faultInjection.predictionBias": "0",
        }
    )


def router_weight(backend: KindBackend) -> float:
    answer = requests.get(f"{backend.url('router')}/readyz", timeout=5).json()
    return float(answer["canary_weight"])


def test_a_good_canary_is_promoted_to_all_the_traffic(kind):
    with traffic(kind.url("router")):
        ran = promote(kind, "kind-v2")
    print(ran.stdout, ran.stderr)
    assert ran.returncode == EXIT_CODES[Phase.PROMOTED], ran.stdout + ran.stderr
    assert "promote: canary MAE within" in ran.stdout
    kind.wait_for_weight(100, 180)


def test_a_biased_canary_is_rolled_back_to_no_traffic(kind, tmp_path):
    biased = tmp_path / "biased.yaml"  # a file: --set-string would make the bias a string
    biased.write_text(
        yaml.safe_dump({"model-exporter": {"canary": {"faultInjection": {"predictionBias": 2.0}}}})
    )
    with traffic(kind.url("router")):
        ran = promote(kind, "kind-biased", biased)
    print(ran.stdout, ran.stderr)
    assert ran.returncode == EXIT_CODES[Phase.ROLLED_BACK], ran.stdout + ran.stderr
    assert "rollback: canary MAE worse than stable" in ran.stdout
    kind.wait_for_weight(0, 180)
    assert router_weight(kind) == 0
