"""The release workflow (.github/workflows/release.yaml) and its version check (.ci/release-check),
read without a network: each rule below is a function that lists what the workflow gets wrong, so
the last tests can hand it a broken copy and see the rule speak."""

from __future__ import annotations

import copy
import fnmatch
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from local_stack.toolchain import REPO_ROOT

RELEASE = REPO_ROOT / ".github" / "workflows" / "release.yaml"
CHARTS = ("model-exporter", "model-monitoring")
CHART_FILES = [REPO_ROOT / "charts" / name / "Chart.yaml" for name in CHARTS]
PLATFORMS = {"linux/amd64", "linux/arm64"}
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v\d+\.\d+\.\d+\s*$")

Workflow = dict[str, Any]
Step = dict[str, Any]


def load() -> Workflow:
    return yaml.safe_load(RELEASE.read_text())


def triggers(workflow: Workflow) -> Any:
    # YAML 1.1 reads the key `on` as the boolean true
    return workflow.get("on", workflow.get(True))


def job_steps(workflow: Workflow) -> Iterator[tuple[str, Step]]:
    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield name, step


def uses(step: Step, action: str) -> bool:
    return step.get("uses", "").split("@")[0] == action


def the_step(workflow: Workflow, action: str) -> tuple[str, Step]:
    found = [(job, step) for job, step in job_steps(workflow) if uses(step, action)]
    assert len(found) == 1, f"one {action} step, found {len(found)}"
    return found[0]


def runs(step: Step, command: str) -> bool:
    return any(line.strip().startswith(command) for line in step.get("run", "").splitlines())


def needed(workflow: Workflow, job: str) -> set[str]:
    """Every job that `job` waits for, directly or through others."""
    direct = workflow["jobs"][job].get("needs", [])
    direct = [direct] if isinstance(direct, str) else direct
    return set(direct).union(*(needed(workflow, d) for d in direct))


def version_check_job(workflow: Workflow) -> str | None:
    return next((job for job, step in job_steps(workflow) if runs(step, ".ci/release-check")), None)


def publishes(step: Step) -> bool:
    return uses(step, "docker/build-push-action") or "helm push" in step.get("run", "")


def is_true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


# --- the rules ------------------------------------------------------------------------------


def trigger_problems(workflow: Workflow) -> list[str]:
    on = triggers(workflow)
    if not isinstance(on, dict) or set(on) != {"push"} or set(on["push"] or {}) != {"tags"}:
        return [f"runs on {on!r}, not only on pushed tags"]
    problems = []
    for pattern in on["push"]["tags"]:
        if not fnmatch.fnmatchcase("v1.2.3", pattern) or fnmatch.fnmatchcase("main", pattern):
            problems.append(f"tag pattern {pattern!r} is not a version tag")
        if fnmatch.fnmatchcase("latest", pattern) or fnmatch.fnmatchcase("v1", pattern):
            problems.append(f"tag pattern {pattern!r} also takes tags that are not X.Y.Z")
    return problems


def build_problems(workflow: Workflow) -> list[str]:
    job, build = the_step(workflow, "docker/build-push-action")
    given = build.get("with", {})
    problems = []
    platforms = {p.strip() for p in str(given.get("platforms", "")).split(",") if p.strip()}
    if not platforms >= PLATFORMS:
        problems.append(f"builds {sorted(platforms)}, not {sorted(PLATFORMS)}")
    if not is_true(given.get("sbom")):
        problems.append("no SBOM (sbom: true)")
    if given.get("provenance") != "mode=max":
        problems.append(f"provenance is {given.get('provenance')!r}, not mode=max")
    if not is_true(given.get("push")):
        problems.append("the image is built but not pushed")
    if (given.get("context"), given.get("file")) != ("exporter", "exporter/Dockerfile"):
        problems.append("not built from exporter/Dockerfile in the exporter/ context")
    steps = workflow["jobs"][job]["steps"]
    before = steps[: steps.index(build)]
    for action in ("docker/setup-qemu-action", "docker/setup-buildx-action", "docker/login-action"):
        if not any(uses(step, action) for step in before):
            problems.append(f"no {action} before the build")
    return problems


def image_problems(workflow: Workflow) -> list[str]:
    """The image pushed is `.ci/image-ref`'s repository, tagged with the tag's version, both as
    the version-check job reports them (its script is run by test_the_release_check_*)."""
    check = version_check_job(workflow)
    if check is None:
        return ["no job runs .ci/release-check"]
    _job, build = the_step(workflow, "docker/build-push-action")
    expected = f"${{{{ needs.{check}.outputs.image }}}}:${{{{ needs.{check}.outputs.version }}}}"
    tags = str(build.get("with", {}).get("tags", "")).strip()
    problems = [] if tags == expected else [f"pushes {tags!r}, not {expected!r}"]
    outputs = workflow["jobs"][check].get("outputs", {})
    for key in ("image", "version", "charts"):
        if "steps." not in str(outputs.get(key, "")):
            problems.append(f"job {check} does not output {key} from its check step")
    return problems


def chart_problems(workflow: Workflow) -> list[str]:
    steps = [step for _job, step in job_steps(workflow)]
    commands = [line.strip() for step in steps for line in step.get("run", "").splitlines()]
    problems = []

    def first(command: str) -> int:
        """The first line that runs `command` (first on the line, or after a pipe)."""
        started = re.compile(rf"(^|\|\s*){re.escape(command)}")
        return next((i for i, line in enumerate(commands) if started.search(line)), -1)

    repo_add, dep_build = (
        first("helm repo add prometheus-community"),
        first("helm dependency build"),
    )
    package, login, push = first("helm package"), first("helm registry login"), first("helm push")
    if not 0 <= repo_add < dep_build < package:
        problems.append("the umbrella's dependencies are not built before it is packaged")
    elif "charts/model-monitoring" not in commands[dep_build]:
        problems.append("helm dependency build is not run on charts/model-monitoring")
    if package < 0 or not all(f"charts/{name}" in commands[package] for name in CHARTS):
        problems.append("helm package does not package both charts")
    if not 0 <= login < push:
        problems.append("no helm registry login before helm push")
    pushing = [step for step in steps if "helm push" in step.get("run", "")]
    check = version_check_job(workflow)
    for step in pushing:
        target = step.get("env", {}).get("CHARTS", "")
        if target != f"${{{{ needs.{check}.outputs.charts }}}}" or '"$CHARTS"' not in step["run"]:
            problems.append(
                "helm push does not go to the charts registry the version check reports"
            )
        if not all(name in step["run"] for name in CHARTS):
            problems.append("helm push does not push both charts")
    if not pushing:
        problems.append("no helm push")
    return problems


def ordering_problems(workflow: Workflow) -> list[str]:
    """Every job that publishes waits for the version check."""
    check = version_check_job(workflow)
    if check is None:
        return ["no job runs .ci/release-check"]
    publishing = {job for job, step in job_steps(workflow) if publishes(step)}
    return [
        f"{job} publishes without waiting for {check}"
        for job in sorted(publishing)
        if check not in needed(workflow, job)
    ]


def permission_problems(workflow: Workflow) -> list[str]:
    problems = []
    if workflow.get("permissions") not in ({}, {"contents": "read"}):
        problems.append(f"workflow-wide permissions {workflow.get('permissions')!r}")
    for name, job in workflow["jobs"].items():
        granted = job.get("permissions")
        if granted is None or isinstance(granted, str):
            problems.append(f"{name}: permissions {granted!r}, not a list of scopes")
            continue
        pushes = any(publishes(step) for step in job.get("steps", []))
        for scope, level in granted.items():
            wanted = "write" if scope == "packages" and pushes else "read"
            if scope not in ("contents", "packages") or level not in (wanted, "none"):
                problems.append(f"{name}: {scope}: {level} is more than it needs")
    return problems


def pinning_problems(text: str) -> list[str]:
    """Every action by a full commit SHA, its release named in a comment (read from the raw text:
    the YAML parser drops comments)."""
    problems = []
    for line in text.splitlines():
        match = re.match(r"\s*(?:-\s*)?uses:\s*(\S+)(.*)$", line)
        if not match or match.group(1).startswith("./"):
            continue
        if not PINNED.match(match.group(1)) or not VERSION_COMMENT.search(match.group(2)):
            problems.append(line.strip())
    return problems


RULES: dict[str, Callable[[Workflow], list[str]]] = {
    "trigger": trigger_problems,
    "build": build_problems,
    "image": image_problems,
    "charts": chart_problems,
    "ordering": ordering_problems,
    "permissions": permission_problems,
}


@pytest.mark.parametrize("rule", RULES, ids=str)
def test_the_release_workflow_keeps_the_rule(rule):
    assert RULES[rule](load()) == []


def test_every_action_is_pinned_by_commit_with_its_version():
    assert pinning_problems(RELEASE.read_text()) == []


def test_nothing_is_signed_that_nothing_verifies():
    """No cosign step (sigstore/cosign-installer, `cosign sign`): no step after it, and nothing
    in the charts, would verify the signature."""
    signing = [
        step
        for _job, step in job_steps(load())
        if "cosign" in step.get("uses", "") or re.search(r"\bcosign\b", step.get("run", ""))
    ]
    assert signing == []


# --- the version check, run ------------------------------------------------------------------


def chart_version() -> str:
    versions = {yaml.safe_load(path.read_text())["version"] for path in CHART_FILES}
    assert len(versions) == 1, versions
    return versions.pop()


def release_check(*args: str, root: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(root / ".ci" / "release-check"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def outputs(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def test_the_release_check_passes_the_tag_of_the_charts_version_and_names_the_image():
    version = chart_version()
    result = release_check(f"v{version}", "model-monitoring")
    assert result.returncode == 0, result.stderr
    image_ref = subprocess.run(
        [str(REPO_ROOT / ".ci" / "image-ref")], capture_output=True, text=True, check=True
    ).stdout.strip()
    found = outputs(result)
    assert f"{found['image']}:{found['version']}" == image_ref
    assert found["version"] == version
    assert re.fullmatch(r"oci://ghcr\.io/[a-z0-9-]+/charts", found["charts"]), found["charts"]
    assert found["image"].startswith(
        found["charts"].removeprefix("oci://").removesuffix("/charts") + "/"
    )


@pytest.mark.parametrize(
    ("tag", "owner", "said"),
    [
        ("v99.0.0", "model-monitoring", "charts/model-exporter/Chart.yaml version is"),
        ("v99.0.0", "model-monitoring", "CHANGELOG.md has no '## [99.0.0]' section"),
        ("0.1.0", "model-monitoring", "is not v<major>.<minor>.<patch>"),
        ("latest", "model-monitoring", "is not v<major>.<minor>.<patch>"),
    ],
)
def test_the_release_check_refuses_a_tag_the_charts_do_not_carry(tag, owner, said):
    result = release_check(tag, owner)
    assert result.returncode == 1
    assert said in result.stderr
    assert result.stdout == "", "nothing for $GITHUB_OUTPUT"


def test_the_release_check_refuses_an_owner_that_cannot_push_the_image():
    result = release_check(f"v{chart_version()}", "a-fork")
    assert result.returncode == 1
    assert "is not under ghcr.io/a-fork" in result.stderr


@pytest.fixture
def checkout(tmp_path) -> Path:
    """The files the version check reads, copied, so a test can make them disagree."""
    for relative in (
        ".ci/release-check",
        ".ci/image-ref",
        "charts/model-exporter/Chart.yaml",
        "charts/model-exporter/values.yaml",
        "charts/model-monitoring/Chart.yaml",
        "exporter/src/modelmon/__init__.py",
        "CHANGELOG.md",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / relative, tmp_path / relative)
    return tmp_path


UMBRELLA_FILE = "charts/model-monitoring/Chart.yaml"
EXPORTER_FILE = "charts/model-exporter/Chart.yaml"


@pytest.mark.parametrize(
    ("path", "line", "said"),
    [
        (UMBRELLA_FILE, 'appVersion: "{v}"', "model-monitoring/Chart.yaml appVersion is"),
        (EXPORTER_FILE, "version: {v}", "model-exporter/Chart.yaml version is"),
        (UMBRELLA_FILE, "- name: model-exporter\n    version: {v}", "pins model-exporter"),
        ("exporter/src/modelmon/__init__.py", '__version__ = "{v}"', "__version__ is"),
    ],
    ids=["umbrella-appVersion", "subchart-version", "pinned-subchart", "package"],
)
def test_the_release_check_names_the_one_file_that_disagrees(checkout, path, line, said):
    version = chart_version()
    target = checkout / path
    text = target.read_text()
    assert line.format(v=version) in text
    target.write_text(text.replace(line.format(v=version), line.format(v="9.9.9"), 1))
    result = release_check(f"v{version}", "model-monitoring", root=checkout)
    assert result.returncode == 1
    assert f"{said} '9.9.9', not '{version}'" in result.stderr
    assert result.stderr.count("::error::") == 1, result.stderr


# --- the rules can fail ------------------------------------------------------------------------


def mutate(change: Callable[[Workflow], None]) -> Workflow:
    workflow = copy.deepcopy(load())
    change(workflow)
    return workflow


def build_with(workflow: Workflow) -> dict[str, Any]:
    return the_step(workflow, "docker/build-push-action")[1]["with"]


def drop_needs(workflow: Workflow) -> None:
    for job in workflow["jobs"].values():
        job.pop("needs", None)


def on_branches_too(workflow: Workflow) -> None:
    triggers(workflow)["push"]["branches"] = ["main"]


def write_all(workflow: Workflow) -> None:
    next(iter(workflow["jobs"].values()))["permissions"] = "write-all"


def push_charts_elsewhere(workflow: Workflow) -> None:
    for _job, step in job_steps(workflow):
        if "CHARTS" in step.get("env", {}):
            step["env"]["CHARTS"] = "oci://ghcr.io/someone/charts"


def package_one_chart(workflow: Workflow) -> None:
    for _job, step in job_steps(workflow):
        if "helm package" in step.get("run", ""):
            step["run"] = step["run"].replace(" charts/model-monitoring", "")


def check_job_writes(workflow: Workflow) -> None:
    workflow["jobs"][version_check_job(workflow)]["permissions"]["packages"] = "write"


MISTAKES = {
    "no-sbom": ("build", lambda w: build_with(w).pop("sbom"), "no SBOM"),
    "provenance-min": ("build", lambda w: build_with(w).update(provenance="1"), "not mode=max"),
    "one-platform": ("build", lambda w: build_with(w).update(platforms="linux/amd64"), "builds"),
    "other-image": ("image", lambda w: build_with(w).update(tags="x:latest"), "pushes 'x:latest'"),
    "branches": ("trigger", on_branches_too, "not only on pushed tags"),
    "any-tag": ("trigger", lambda w: triggers(w)["push"].update(tags=["*"]), "not a version tag"),
    "no-needs": ("ordering", drop_needs, "publishes without waiting"),
    "write-all": ("permissions", write_all, "'write-all'"),
    "check-writes": ("permissions", check_job_writes, "packages: write is more than it needs"),
    "charts-elsewhere": ("charts", push_charts_elsewhere, "does not go to the charts registry"),
    "one-chart": ("charts", package_one_chart, "does not package both charts"),
}


@pytest.mark.parametrize(("rule", "change", "said"), MISTAKES.values(), ids=MISTAKES.keys())
def test_the_rules_catch_the_mistakes_they_exist_for(rule, change, said):
    problems = RULES[rule](mutate(change))
    assert any(said in problem for problem in problems), problems


def test_the_pinning_rule_catches_a_tag_and_a_missing_comment():
    text = (
        "      - uses: docker/build-push-action@v7\n"
        "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1\n"
        "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1  # v7.0.1\n"
    )
    assert len(pinning_problems(text)) == 2
