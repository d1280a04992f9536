"""What `modelmon-ops promote` asks helm and kubectl to do on a cluster (no cluster here: helm
and kubectl are recording stand-ins on PATH, so what is tested is the commands and the objects
it sends, which are checked against the chart and Kubernetes' own schemas; the promotion itself
runs against the local stack in tests/ops/test_promote.py)."""

from __future__ import annotations

import json
import os
import shlex
import stat
from pathlib import Path

import pytest
import yaml

from local_stack import chart
from local_stack.toolchain import REPO_ROOT
from manifest_checks import validation_errors
from modelmon.ops.errors import OpsError
from modelmon.ops.helm_release import STATE_KEY, HelmRelease, state_config_map
from modelmon.ops.promotion import Phase, PromotionState

RECORDER = """#!/bin/sh
printf '%s\\n' "$(basename "$0") $*" >> "$CALLS"
if [ "$1" = apply ]; then cat > "$APPLIED"; fi
if [ "$1" = get ] && [ -s "$GOT" ]; then cat "$GOT"; fi
exit "${FAIL:-0}"
"""


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("helm", "kubectl"):
        path = folder / name
        path.write_text(RECORDER)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    for name in ("CALLS", "APPLIED", "GOT"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    return tmp_path


def release() -> HelmRelease:
    return HelmRelease(
        "user07",
        "kubeflow-user07",
        chart.UMBRELLA,
        [REPO_ROOT / "values" / "users" / "user07.yaml"],
        ["model-exporter.image.tag=0123abc"],
    )


def calls(tools: Path) -> list[list[str]]:
    return [shlex.split(line) for line in (tools / "calls").read_text().splitlines()]


def test_a_weight_is_one_helm_upgrade_that_waits_and_rolls_back_on_failure(tools):
    release().set_weight(50)
    [helm] = calls(tools)
    assert helm[:5] == ["helm", "upgrade", "--install", "user07", str(chart.UMBRELLA)]

    def after(flag: str) -> str:
        return helm[helm.index(flag) + 1]

    assert "--wait" in helm
    assert "--rollback-on-failure" in helm
    sets = [helm[i + 1] for i, word in enumerate(helm) if word == "--set"]
    assert sets == ["model-exporter.canary.enabled=true", "model-exporter.canary.weight=50"]
    assert after("--namespace") == "kubeflow-user07"
    assert after("--set-string") == "model-exporter.image.tag=0123abc"
    # the values it sets are the subchart's, which the umbrella passes on as model-exporter.*
    values = yaml.safe_load((chart.EXPORTER_CHART / "values.yaml").read_text())
    assert {"enabled", "weight"} <= values["canary"].keys()


def test_the_state_is_a_valid_configmap_that_reads_back(tools):
    state = PromotionState("0123abc", 1, 50, 1.0, 2.0, Phase.PROGRESSING, "hold: waiting")
    release().save_state(state)
    applied = json.loads((tools / "applied").read_text())
    assert applied["metadata"]["name"] == state_config_map("user07")
    assert not validation_errors(applied)
    (tools / "got").write_text(json.dumps(applied))
    assert release().load_state() == state


def test_no_state_yet_is_none_and_a_failing_tool_says_what_failed(tools, monkeypatch):
    assert release().load_state() is None
    assert calls(tools)[0][:3] == ["kubectl", "get", "configmap"]
    assert "--ignore-not-found" in calls(tools)[0]
    monkeypatch.setenv("FAIL", "1")
    with pytest.raises(OpsError, match="helm upgrade failed"):
        release().set_weight(10)
    assert STATE_KEY == "state"


def test_a_missing_tool_or_values_file_is_refused_before_anything_runs(tools, monkeypatch):
    with pytest.raises(OpsError, match="no values file"):
        HelmRelease("u", "ns", chart.UMBRELLA, [tools / "absent.yaml"])
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(OpsError, match="helm is not on PATH"):
        release()
