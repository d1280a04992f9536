"""The retrain → deploy loop: retrain-model.yaml and cd-deploy.yaml.

The workflows are read as YAML and their contracts checked against each other and against
modelmon-ops; their input validators run as bash, the way a runner runs them; the promote
step's command line is parsed by modelmon-ops's own parser. The promotion itself is tested in
tests/unit/test_promotion.py and, on the local stack, tests/ops/test_promote.py.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from retrain_job import RETRAIN_STEP

from local_stack.toolchain import REPO_ROOT
from modelmon.ops.cli import build_parser
from modelmon.ops.github import WORKFLOW, GitHubWorkflow
from modelmon.ops.promotion import EXIT_CODES as PROMOTION_EXIT_CODES

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
RETRAIN = WORKFLOWS / "retrain-model.yaml"
DEPLOY = WORKFLOWS / "cd-deploy.yaml"
EXPORTER_VALUES = REPO_ROOT / "charts" / "model-exporter" / "values.yaml"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def triggers(workflow: dict) -> dict:
    return workflow[True]  # YAML 1.1 reads the key `on` as the boolean True


def needs(job: dict) -> list[str]:
    value = job.get("needs", [])
    return [value] if isinstance(value, str) else list(value)


def step_named(job: dict, prefix: str) -> dict:
    matches = [step for step in job["steps"] if step.get("name", "").startswith(prefix)]
    assert len(matches) == 1, f"no single step named {prefix!r}..."
    return matches[0]


def uses(job: dict, action: str) -> list[dict]:
    return [step for step in job["steps"] if step.get("uses", "").startswith(action + "@")]


def all_run_scripts(workflow: dict) -> str:
    return "\n".join(
        step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]
    )


# --- retrain-model.yaml ---------------------------------------------------------------------


def test_retrain_is_dispatched_with_the_inputs_modelmon_ops_sends():
    inputs = triggers(load(RETRAIN))["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"user_id", "reason", "drift_score"}
    assert inputs["user_id"]["required"] is True
    for name in ("reason", "drift_score"):  # a retrain by hand from the Actions tab
        assert (inputs[name]["required"], inputs[name]["default"]) == (False, "")
    for spec in inputs.values():
        assert spec["type"] == "string"
    # the other end of the contract: modelmon-ops trigger-retrain and serve-webhook
    assert RETRAIN.name == WORKFLOW
    for drift in (0.31, None):
        body = GitHubWorkflow(repo="acme/models", token="").body("user07", "MAE(0.5) > 0.4", drift)
        assert set(body["inputs"]) == set(inputs)
        assert all(isinstance(v, str) for v in body["inputs"].values())


def test_retrain_jobs_run_prepare_data_then_retrain_then_trigger_deployment():
    jobs = load(RETRAIN)["jobs"]
    assert list(jobs) == ["prepare-data", "retrain", "trigger-deployment"]
    assert needs(jobs["prepare-data"]) == []
    assert needs(jobs["retrain"]) == ["prepare-data"]
    assert needs(jobs["trigger-deployment"]) == ["retrain"]


def test_the_data_set_travels_from_prepare_data_to_retrain_and_the_bar_is_enforced():
    jobs = load(RETRAIN)["jobs"]
    prepare = " ".join(step.get("run", "") for step in jobs["prepare-data"]["steps"])
    assert "modelmon-train --prepare-data training-data" in prepare
    (upload,) = uses(jobs["prepare-data"], "actions/upload-artifact")
    (download,) = uses(jobs["retrain"], "actions/download-artifact")
    assert upload["with"]["name"] == download["with"]["name"] == "training-data"
    train = step_named(jobs["retrain"], RETRAIN_STEP)
    assert re.search(
        r"modelmon-train --data training-data --out models --max-mae 0\.35 --min-r2 0\.85",
        train["run"],
    )
    assert re.search(
        r'modelmon-train --data training-data --feedback "\$url" --out models', train["run"]
    )
    assert train["env"]["FEEDBACK_DATASET_URL"] == "${{ vars.FEEDBACK_DATASET_URL }}"
    (models,) = uses(jobs["retrain"], "actions/upload-artifact")
    assert models["with"]["name"] == "models"
    # cd-deploy takes the very artifact the retrain uploads
    (fetched,) = uses(load(DEPLOY)["jobs"]["build-and-push"], "actions/download-artifact")
    assert fetched["with"]["name"] == "models"


def test_trigger_deployment_dispatches_model_retrained_with_the_payload_cd_deploy_reads():
    job = load(RETRAIN)["jobs"]["trigger-deployment"]
    script = "\n".join(step["run"] for step in job["steps"])
    assert 'repos/$REPOSITORY/dispatches"' in script
    assert "-f event_type=model-retrained" in script
    sent = set(re.findall(r"client_payload\[(\w+)\]=", script))
    assert sent == {"user_id", "drift_score", "run_id"}
    read = set(re.findall(r"github\.event\.client_payload\.(\w+)", DEPLOY.read_text()))
    assert read, "cd-deploy reads nothing from the payload"
    assert read <= sent
    assert job["steps"][0]["env"]["GH_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"  # noqa: S105


def test_only_trigger_deployment_may_write():
    workflow = load(RETRAIN)
    assert workflow["permissions"] == {"contents": "read"}
    widened = {name: job.get("permissions") for name, job in workflow["jobs"].items()}
    assert widened == {
        "prepare-data": None,
        "retrain": None,
        "trigger-deployment": {"contents": "write"},
    }


# --- the input validators, run as a runner runs them ------------------------------------------


def run_step(step: dict, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "step.sh"
    script.write_text(step["run"])
    output = tmp_path / "github_output"
    output.write_text("")
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        env={"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(output), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


GOOD_USERS = ["user07", "user123", "team-a", "a"]
BAD_USERS = ["User07", "user07; rm -rf /", "-user", "user-", "user_07", "", "u" * 54, "user07\n"]


@pytest.mark.parametrize(("user", "drift", "ok"), [
    *[(user, "0.3125", True) for user in GOOD_USERS],
    *[(user, "0.3125", False) for user in BAD_USERS],
    ("user07", "0", True),
    ("user07", "1e-3", True),
    ("user07", "12.5E+2", True),
    ("user07", "abc", False),
    ("user07", "-0.5", False),
    ("user07", "0.3$(id)", False),
    ("user07", "0.3\n", False),
    ("user07", "", True),  # no drift measured: another quality alert asked
])  # fmt: skip
def test_retrain_validates_its_inputs_first(tmp_path, user, drift, ok):
    job = load(RETRAIN)["jobs"]["prepare-data"]
    step = job["steps"][0]
    assert step["name"] == "Validate the inputs"
    assert "${{" not in step["run"]
    result = run_step(step, tmp_path, USER_ID=user, DRIFT_SCORE=drift, REASON="MAE(0.5) > 0.4")
    assert (result.returncode == 0) is ok, result.stdout + result.stderr
    if not ok:
        assert "::error::" in result.stdout


@pytest.mark.parametrize(("reason", "ok"), [
    ("", True),
    ("MAE(0.5164) > 0.4 [ModelPerformanceDegraded, stable]; $(id) `id`", True),
    ("x" * 1000, True),
    ("x" * 1001, False),
])  # fmt: skip
def test_the_reason_is_kept_as_text_never_run(tmp_path, reason, ok):
    step = load(RETRAIN)["jobs"]["prepare-data"]["steps"][0]
    result = run_step(step, tmp_path, USER_ID="user07", DRIFT_SCORE="", REASON=reason)
    assert (result.returncode == 0) is ok, result.stdout + result.stderr
    if ok:
        assert f"reason: {reason or 'none given'})" in result.stdout
    assert "uid=" not in result.stdout


@pytest.mark.parametrize(("user", "run_id", "ok"), [
    ("user07", "1234567890", True),
    ("user07", "", True),
    ("user07", "12a", False),
    ("user07; id", "1", False),
    ("User07", "1", False),
])  # fmt: skip
def test_cd_deploy_validates_the_payload_first(tmp_path, user, run_id, ok):
    step = load(DEPLOY)["jobs"]["build-and-push"]["steps"][0]
    assert step["name"] == "Validate the inputs"
    result = run_step(step, tmp_path, USER_ID=user, RETRAIN_RUN_ID=run_id, DRIFT_SCORE="0.3")
    assert (result.returncode == 0) is ok, result.stdout + result.stderr
    if ok:
        outputs = (tmp_path / "github_output").read_text().splitlines()
        assert outputs == [f"user_id={user}", f"retrain_run_id={run_id}"]


# --- cd-deploy.yaml ---------------------------------------------------------------------------


def test_cd_deploy_listens_to_model_retrained_and_to_a_manual_dispatch():
    on = triggers(load(DEPLOY))
    assert on["repository_dispatch"] == {"types": ["model-retrained"]}
    assert on["workflow_dispatch"]["inputs"]["user_id"]["required"] is True


def test_cd_deploy_builds_then_promotes_in_production():
    workflow = load(DEPLOY)
    jobs = workflow["jobs"]
    assert list(jobs) == ["build-and-push", "promote"]
    assert needs(jobs["promote"]) == ["build-and-push"]
    assert jobs["promote"]["environment"] == "production"
    assert workflow["permissions"] == {"contents": "read"}
    assert jobs["build-and-push"]["permissions"]["packages"] == "write"
    assert "permissions" not in jobs["promote"]
    promote = step_named(jobs["promote"], "Promote the canary 10 → 50 → 100 %")
    assert "secrets.KUBECONFIG_B64" in DEPLOY.read_text()
    kubeconfig = step_named(jobs["promote"], "The cluster's kubeconfig")
    assert "umask 077" in kubeconfig["run"]
    assert "chmod 0600" in kubeconfig["run"]
    # the image promoted is the one the first job pushed, pinned by digest
    env = promote["env"]
    assert env["IMAGE_DIGEST"] == "${{ needs.build-and-push.outputs.image_digest }}"
    assert env["USER_ID"] == "${{ needs.build-and-push.outputs.user_id }}"


def test_no_expression_is_pasted_into_a_script():
    for path in (RETRAIN, DEPLOY):
        assert "${{" not in all_run_scripts(load(path)), path.name


def test_every_script_parses_as_bash(tmp_path):
    for path in (RETRAIN, DEPLOY):
        for job in load(path)["jobs"].values():
            for number, step in enumerate(job["steps"]):
                if "run" not in step:
                    continue
                script = tmp_path / f"{path.stem}-{number}.sh"
                script.write_text(step["run"])
                result = subprocess.run(
                    ["bash", "-n", str(script)], capture_output=True, text=True, check=False
                )
                assert result.returncode == 0, f"{path.name} {step.get('name')}: {result.stderr}"


def test_every_action_is_pinned_to_a_commit_with_its_version():
    for path in (RETRAIN, DEPLOY):
        for line in path.read_text().splitlines():
            if re.match(r"\s*(- )?uses:", line):
                assert re.search(r"@[0-9a-f]{40}  # v\d+\.\d+\.\d+$", line), line


def test_steps_install_helm_the_projects_way():
    text = DEPLOY.read_text()
    assert "python3 harness/local_stack/toolchain.py install-helm" in text
    assert "setup-helm" not in text


# --- the promote step -------------------------------------------------------------------------


def promote_command(step: dict) -> list[str]:
    """The step's modelmon-ops promote command line, its variables given sample values."""
    sample = {
        "USER_ID": "user07",
        "IMAGE_REPOSITORY": "ghcr.io/acme/modelmon-exporter",
        "IMAGE_TAG": "0123abc",
        "IMAGE_DIGEST": "sha256:" + "a" * 64,
        "CANARY_MODEL_PATH": "/opt/modelmon/retrained/model-v2.joblib",
        "SOAK_TIME": "10m",
        "LABEL_DELAY": "0",
    }
    script = step["run"]
    script = script[script.index("modelmon-ops promote") :]
    script = script.replace('"${sets[@]}"', "SETS").replace("\\\n", " ")
    words = shlex.split(script.split("\n")[0].split(" || ")[0])
    expanded = []
    for word in words:
        if word == "SETS":
            expanded += [
                "--set-string",
                f"model-exporter.image.repository={sample['IMAGE_REPOSITORY']}",
                "--set-string",
                f"model-exporter.image.digest={sample['IMAGE_DIGEST']}",
            ]
            continue
        expanded.append(re.sub(r"\$\{?(\w+)\}?", lambda m: sample[m[1]], word))
    return expanded


def test_cd_deploy_promotes_with_modelmon_ops_and_its_flags_parse():
    step = step_named(load(DEPLOY)["jobs"]["promote"], "Promote the canary")
    command = promote_command(step)
    assert command[:2] == ["modelmon-ops", "promote"]
    parser = build_parser({})
    args = parser.parse_args(command[1:])
    assert args.revision == "0123abc"
    assert args.user == "user07"
    assert [str(v) for v in args.values] == ["values/users/user07.yaml"]
    assert args.prometheus_url == "http://127.0.0.1:9090"
    assert (REPO_ROOT / "values" / "users" / "user07.yaml").is_file()
    # every value the step sets exists in the chart
    values = yaml.safe_load(EXPORTER_VALUES.read_text())
    # each `KEY=$VALUE` of the loop becomes --set-string model-exporter.KEY=VALUE
    assert '--set-string "model-exporter.$value"' in step["run"]
    keys = set(re.findall(r'"([A-Za-z.]+)=\$[A-Z_]+"', step["run"]))
    assert {"image.repository", "image.tag", "image.digest", "canary.modelPath"} <= keys
    for key in keys:
        node = values
        for part in key.split("."):
            assert part in node, f"{key}: not in {EXPORTER_VALUES.name}"
            node = node[part]


def test_the_promote_step_keeps_prometheus_reachable_for_the_whole_promotion():
    run = step_named(load(DEPLOY)["jobs"]["promote"], "Promote the canary")["run"]
    forward = run.index("kubectl --namespace")
    # a port-forward that drops is started again; promote treats the gap as no verdict yet
    assert "while true" in run[:forward]
    assert run.index("/-/ready") < run.index("modelmon-ops promote")


def test_the_script_it_replaced_is_gone():
    assert not (REPO_ROOT / ".ci" / "promote-canary.sh").exists()
    assert "promote-canary" not in DEPLOY.read_text()


def test_slack_hears_how_each_promotion_ended_from_a_secret_webhook():
    steps = load(DEPLOY)["jobs"]["promote"]["steps"]
    promote = step_named(load(DEPLOY)["jobs"]["promote"], "Promote the canary")
    # the exit codes the step names are promote's own
    named = dict(re.findall(r"^\s+(\d)\) phase=\"([^\"]+)\"", promote["run"], re.MULTILINE))
    assert {int(code) for code in named} == set(PROMOTION_EXIT_CODES.values())
    for phase, code in PROMOTION_EXIT_CODES.items():
        assert named[str(code)].startswith(str(phase).replace("-", " ")), (phase, named)
    assert 'exit "$code"' in promote["run"], "the job still fails when the canary does"
    [slack] = [s for s in steps if "slackapi/slack-github-action" in s.get("uses", "")]
    assert re.fullmatch(r"slackapi/slack-github-action@[0-9a-f]{40}", slack["uses"])
    assert slack["with"]["webhook"] == "${{ secrets.SLACK_WEBHOOK_URL }}"
    assert slack["with"]["webhook-type"] == "incoming-webhook"
    assert "steps.promote.outputs.phase" in slack["with"]["payload"]
    assert slack["if"].startswith("always()"), "told of rollbacks too, which fail the job"
    assert steps.index(slack) > steps.index(promote)
