"""`modelmon-ops new-user`: a user's attach values from a user id and a receiver, judged by the
chart's own schemas before anything is written. values/users/user07.yaml is its output."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from local_stack import chart, manifests
from local_stack.toolchain import REPO_ROOT
from manifest_checks import render_profile, validation_errors
from opstool import run_ops

UMBRELLA = str(chart.UMBRELLA)


def test_the_shipped_user_values_are_the_generators_output() -> None:
    args = ["new-user", "user07", "--slack-channel", "#user07-models", "--output", "-"]
    ran = run_ops(*args, cwd=REPO_ROOT)
    assert ran.code == 0, ran.stderr
    assert ran.stdout == (REPO_ROOT / "values" / "users" / "user07.yaml").read_text()


def test_a_new_user_is_one_command_and_installs_attached(tmp_path: Path, umbrella: Path) -> None:
    output = tmp_path / "user08.yaml"
    ran = run_ops(
        "new-user",
        "user08",
        "--webhook-url",
        "http://alerts.kubeflow-user08.svc:8080/hook",
        "--chart",
        UMBRELLA,
        "--output",
        str(output),
    )
    assert ran.code == 0, ran.stderr
    assert f"helm install user08 {UMBRELLA} -n kubeflow-user08 -f {output}" in ran.stdout
    objects = render_profile(umbrella, [output], release="user08", namespace="kubeflow-user08")
    assert not [o for o in objects if o["kind"] in ("Prometheus", "Alertmanager")], "attach only"
    assert [e for o in objects for e in validation_errors(o)] == []
    [monitor] = manifests.of_kind(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "monitoring"
    [config] = manifests.of_kind(objects, "AlertmanagerConfig")
    hooks = [w["url"] for r in config["spec"]["receivers"] for w in r.get("webhookConfigs", [])]
    assert "http://alerts.kubeflow-user08.svc:8080/hook" in hooks
    values = yaml.safe_load(output.read_text())
    assert values["model-exporter"]["userId"] == "user08"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["user08"], "one of the arguments --slack-channel --webhook-url is required"),
        (["User_8", "--slack-channel", "#u"], "'User_8' is not a user id like user07"),
        (["u" * 60, "--slack-channel", "#u"], "is not a namespace name"),
        (["user08", "--webhook-url", "ftp://x"], "alerting.webhook.url: 'ftp://x' does not match"),
        (["user08", "--slack-channel", "#u", "--chart", "/nowhere"], "no values schema at"),
    ],
    ids=["no receiver", "bad id", "long id", "schema", "no chart"],
)
def test_bad_input_is_refused_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    output = tmp_path / "user.yaml"
    chart_args = [] if "--chart" in args else ["--chart", UMBRELLA]
    ran = run_ops("new-user", *args, *chart_args, "--output", str(output))
    assert ran.code == 2
    assert message in ran.stderr
    assert "Traceback" not in ran.stderr
    assert not output.exists(), "nothing written"


def test_an_existing_file_is_kept_unless_forced(tmp_path: Path) -> None:
    output = tmp_path / "user08.yaml"
    output.write_text("mine\n")
    args = ["new-user", "user08", "--slack-channel", "#u", "--chart", UMBRELLA, "--output"]
    ran = run_ops(*args, str(output))
    assert (ran.code, output.read_text()) == (2, "mine\n")
    assert "exists: pass --force" in ran.stderr
    assert run_ops(*args, str(output), "--force").code == 0
    assert "userId: user08" in output.read_text()
