"""CI as chart-testing will run it on a real runner, checked here without ct or a cluster: each rule
below is a behaviour of ct's own source (helm/chart-testing), cited where the test relies on it,
held against ct.yaml and the workflows so a mistake that would fail CI before any test runs
cannot come back."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from local_stack import chart
from local_stack.toolchain import REPO_ROOT
from manifest_checks import STACK_OFF, enables_stack, render_profile, validation_errors

CT = yaml.safe_load((REPO_ROOT / "ct.yaml").read_text())
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
MONITORING_GROUP = "monitoring.coreos.com/"


def steps() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(WORKFLOWS.glob("*.yaml")):
        workflow = yaml.safe_load(path.read_text())
        for job in workflow["jobs"].values():
            for step in job.get("steps", []):
                found.append((path.name, step))
    return found


def ct_commands(verb: str) -> list[tuple[dict[str, Any], list[str]]]:
    """Each `ct <verb>` command line of the workflows, with its step."""
    found = []
    for _name, step in steps():
        for line in step.get("run", "").splitlines():
            words = shlex.split(line.strip()) if line.strip().startswith("ct ") else []
            if words[:2] == ["ct", verb]:
                found.append((step, words))
    return found


def test_versions_are_judged_only_on_pull_requests_where_ct_can_judge_them() -> None:
    """pkg/config/config.go: with --all or --charts, ct prints "Version increment checking
    disabled" and switches check-version-increment off; without them it lints the charts changed
    since the merge base with the target branch, which only a pull request has."""
    assert CT["check-version-increment"] is True
    lints = ct_commands("lint")
    every_chart = [words for _step, words in lints if "--all" in words]
    assert every_chart, "a ct lint of every chart on every event"
    changed = [(step, words) for step, words in lints if "--all" not in words]
    assert changed, "a ct lint of the changed charts, where the version check applies"
    for step, words in changed:
        assert "--charts" not in words
        assert step.get("if") == "github.event_name == 'pull_request'", step
        assert "--target-branch" in words
        assert step["env"]["TARGET_BRANCH"] == "${{ github.base_ref }}"


def test_ct_install_lets_chart_testing_create_the_namespaces() -> None:
    """pkg/chart/chart.go, InstallChart: ct creates (and deletes) a namespace per chart and
    values file only when no --namespace is given; pkg/config/config.go refuses --namespace
    without --release-label."""
    installs = ct_commands("install")
    assert installs, "the e2e-kind workflow runs ct install"
    creates = "--create-namespace" in CT.get("helm-extra-args", "")
    for _step, words in installs:
        if "--namespace" in words:
            assert "--release-label" in words, words
            assert creates, "ct does not create a namespace it is given"


def chart_dirs() -> list[Path]:
    """The charts in the order ct processes them: each chart-dirs folder's children, as
    ReadAllChartDirectories lists them (os.ReadDir: by name)."""
    return [
        child
        for folder in CT["chart-dirs"]
        for child in sorted((REPO_ROOT / folder).iterdir())
        if (child / "Chart.yaml").exists()
    ]


def test_every_chart_installs_in_cts_order_with_only_the_crds_already_there(tmp_path) -> None:
    """ct installs every values file under a chart's ci/ (or the defaults when there is none),
    chart by chart in directory order; the monitoring.coreos.com CRDs exist once a profile with
    kube-prometheus-stack was installed (Helm installs a chart's crds/ first and never removes
    them), so a profile before that must render no monitoring object."""
    crds = False
    order = []
    umbrella = chart.prepare_umbrella(tmp_path)
    for chart_dir in chart_dirs():
        profiles = sorted((chart_dir / "ci").glob("*-values.yaml")) or [None]
        for values in profiles:
            target = umbrella if chart_dir.name == umbrella.name else chart_dir
            files = [values] if values else []
            crds = crds or bool(values and target == umbrella and enables_stack(values))
            objects = render_profile(
                target, files, set_values=STACK_OFF if target == umbrella else None
            )
            monitoring = [
                o["kind"] for o in objects if o["apiVersion"].startswith(MONITORING_GROUP)
            ]
            order.append((chart_dir.name, values.name if values else "defaults", crds))
            assert crds or not monitoring, (
                f"{chart_dir.name} with {values.name if values else 'its defaults'} renders "
                f"{monitoring} before any profile installed the CRDs"
            )
    assert next(name for name, _values, _crds in order) == "model-exporter", order


def test_the_image_ci_builds_is_the_one_the_chart_runs() -> None:
    values = yaml.safe_load((chart.EXPORTER_CHART / "values.yaml").read_text())
    metadata = yaml.safe_load((chart.EXPORTER_CHART / "Chart.yaml").read_text())
    expected = f"{values['image']['repository']}:{metadata['appVersion']}"
    built = subprocess.run(
        [str(REPO_ROOT / ".ci" / "image-ref")], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert built == expected
    for name, step in steps():
        run = step.get("run", "")
        if "docker build" in run and "exporter/" in run and name == "e2e-kind.yaml":
            assert ".ci/image-ref" in run, step
            assert f":{metadata['appVersion']}" not in run, "no hard-coded tag"
    image_name = expected.rsplit(":", 1)[0].rsplit("/", 1)[1]
    for workflow in sorted((REPO_ROOT / ".github" / "workflows").glob("*.yaml")):
        assert image_name not in workflow.read_text(), f"{workflow.name}: use .ci/image-ref"
    makefile = (REPO_ROOT / "Makefile").read_text()
    kind_target = makefile.split("\ntest-kind: setup")[1].split("\n\n")[0]
    assert ".ci/image-ref" in kind_target
    assert "appVersion" not in kind_target


def test_the_rules_catch_the_mistakes_they_exist_for(monkeypatch) -> None:
    given = shlex.split("ct install --config ct.yaml --all --namespace monitoring")
    monkeypatch.setattr(__name__ + ".ct_commands", lambda verb: [({}, given)])
    with pytest.raises(AssertionError):
        test_ct_install_lets_chart_testing_create_the_namespaces()
    every_chart_only = shlex.split("ct lint --config ct.yaml --all")
    monkeypatch.setattr(__name__ + ".ct_commands", lambda verb: [({}, every_chart_only)])
    with pytest.raises(AssertionError, match="changed charts"):
        test_versions_are_judged_only_on_pull_requests_where_ct_can_judge_them()


ARGO_PLUGIN = REPO_ROOT / ".ci" / "argo-rollouts" / "gateway-api-plugin.yaml"
PINNED_RELEASE = r"https://github\.com/{}/releases/download/v\d+\.\d+\.\d+/"


def test_kserve_is_installed_pinned_in_standard_mode_before_ct_installs_its_profile():
    """ci/kserve-values.yaml renders InferenceServices: KServe's CRDs, webhooks and controller
    first, with cert-manager before them (kserve.yaml holds cert-manager Certificates), each from
    a pinned release, and the deployment mode the profile's InferenceServices name."""
    runs = [step.get("run", "") for name, step in steps() if name == "e2e-kind.yaml"]
    ct_install = next(i for i, run in enumerate(runs) if "ct install" in run)
    before = "\n".join(runs[:ct_install])
    cert_manager = re.search(PINNED_RELEASE.format("cert-manager/cert-manager"), before)
    kserve = re.search(PINNED_RELEASE.format("kserve/kserve") + "kserve.yaml", before)
    assert cert_manager, before
    assert kserve, before
    assert cert_manager.start() < kserve.start()
    assert "rollout status deployment/kserve-controller-manager" in before[kserve.end() :]
    isvc = [
        o
        for o in chart.render(
            chart.EXPORTER_CHART,
            release="r1",
            namespace="ct",
            values_files=[chart.EXPORTER_CHART / "ci" / "kserve-values.yaml"],
        )
        if o["kind"] == "InferenceService"
    ]
    assert isvc
    for o in isvc:
        mode = o["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
        assert f'defaultDeploymentMode\\": \\"{mode}' in before


def profile_object(profile: str, kind: str) -> dict[str, Any]:
    """The one object of `kind` a ci/ profile of the subchart renders, as ct installs it."""
    objects = chart.render(
        chart.EXPORTER_CHART,
        release="r1",
        namespace="ct",
        values_files=[chart.EXPORTER_CHART / "ci" / profile],
    )
    [found] = [o for o in objects if o["kind"] == kind]
    return found


def test_argo_rollouts_and_its_plugin_are_installed_pinned_before_ct_installs_their_profile():
    """ct install --all installs ci/argo-rollouts-values.yaml with the rest: a Rollout, an
    AnalysisTemplate and HTTPRoutes need their CRDs, the controller and its Gateway API plugin
    in the cluster first (the plugin from the controller's ConfigMap, read at start:
    utils/config/config.go in argoproj/argo-rollouts)."""
    kind_steps = [step for name, step in steps() if name == "e2e-kind.yaml"]
    runs = [step.get("run", "") for step in kind_steps]
    ct_install = next(i for i, run in enumerate(runs) if "ct install" in run)
    before = "\n".join(runs[:ct_install])
    assert re.search(PINNED_RELEASE.format("argoproj/argo-rollouts") + "install.yaml", before)
    assert re.search(PINNED_RELEASE.format("kubernetes-sigs/gateway-api"), before)
    assert f"kubectl apply -f {ARGO_PLUGIN.relative_to(REPO_ROOT)}" in before
    restart = before.index("rollout restart deployment/argo-rollouts")
    assert before.index(str(ARGO_PLUGIN.relative_to(REPO_ROOT))) < restart

    plugin = list(yaml.safe_load_all(ARGO_PLUGIN.read_text()))
    errors = [error for obj in plugin for error in validation_errors(obj)]
    assert not errors, errors
    [config] = [o for o in plugin if o["kind"] == "ConfigMap"]
    [entry] = yaml.safe_load(config["data"]["trafficRouterPlugins"])
    assert re.match(
        PINNED_RELEASE.format("argoproj-labs/rollouts-plugin-trafficrouter-gatewayapi"),
        entry["location"],
    )
    rollout = profile_object("argo-rollouts-values.yaml", "Rollout")
    assert entry["name"] in rollout["spec"]["strategy"]["canary"]["trafficRouting"]["plugins"]


def test_flagger_is_installed_pinned_before_ct_installs_its_profile():
    """ct install --all installs ci/flagger-values.yaml with the rest: a Canary and a
    MetricTemplate need Flagger's CRDs and controller first. Its kustomize/gatewayapi
    (fluxcd/flagger) brings both, with the Gateway API provider the Canary names."""
    runs = [step.get("run", "") for name, step in steps() if name == "e2e-kind.yaml"]
    ct_install = next(i for i, run in enumerate(runs) if "ct install" in run)
    before = "\n".join(runs[:ct_install])
    pinned = re.search(
        r'kubectl apply -k "https://github\.com/fluxcd/flagger//kustomize/gatewayapi'
        r'\?ref=v\d+\.\d+\.\d+"',
        before,
    )
    assert pinned, before
    assert "rollout status deployment/flagger" in before[pinned.end() :]
    canary = profile_object("flagger-values.yaml", "Canary")
    assert canary["spec"]["provider"] == "gatewayapi:v1"
