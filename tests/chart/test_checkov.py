"""checkov on the manifests every values file renders: no failed check. The skips, each with
its reason, are in .checkov.yaml (global) or on the object (checkov.io/skip annotations)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from local_stack.toolchain import REPO_ROOT, TOOLS_DIR
from manifest_checks import ALL_VALUES_FILES, STACK_OFF, VALUES_DIR, render_profile

CHECKOV = TOOLS_DIR / "checkov" / "bin" / "checkov"
# Switches that no values file turns on, scanned too: name -> (values file, --set values).
EXTRA_RENDERS = {
    "retrain-webhook-for-real": (
        VALUES_DIR / "users" / "user07.yaml",
        {
            "model-exporter.retrainWebhook.dryRun": "false",
            "model-exporter.retrainWebhook.githubTokenSecret.name": "github-token",
        },
    ),
}


def run_checkov(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(directory),
            "--config-file",
            str(REPO_ROOT / ".checkov.yaml"),
            "--output",
            "json",
            "--quiet",
            "--compact",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode in (0, 1), result.stderr
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


def test_rendered_charts_pass_checkov(umbrella, tmp_path):
    for values_file in ALL_VALUES_FILES:
        objects = render_profile(umbrella, [values_file], set_values=STACK_OFF)
        name = (
            values_file.stem if values_file.parent.name != "users" else f"user-{values_file.stem}"
        )
        (tmp_path / f"{values_file.parent.name}-{name}.yaml").write_text(
            yaml.safe_dump_all(objects)
        )
    for name, (values_file, set_values) in EXTRA_RENDERS.items():
        objects = render_profile(umbrella, [values_file], set_values={**STACK_OFF, **set_values})
        (tmp_path / f"extra-{name}.yaml").write_text(yaml.safe_dump_all(objects))
    [report] = run_checkov(tmp_path)
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']})"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert report["summary"]["passed"] > 300


def test_checkov_would_catch_a_privileged_container(tmp_path):
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bad", "namespace": "x"},
        "spec": {
            "containers": [
                {"name": "c", "image": "busybox:1.37", "securityContext": {"privileged": True}}
            ]
        },
    }
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(pod))
    [report] = run_checkov(tmp_path)
    failed_ids = {c["check_id"] for c in report["results"]["failed_checks"]}
    assert "CKV_K8S_16" in failed_ids  # privileged containers
