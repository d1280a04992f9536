"""Several releases on one local stack, as on a cluster: the platform's, then users attached to
its Prometheus and Alertmanager, installed, upgraded and uninstalled one by one with helm's
semantics. An uninstall takes that user's pods, Services, targets, rules and routes, and nothing
of anyone else's."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from local_stack.manifests import ManifestError
from local_stack.stack import LocalStack, ReleaseSpec, StackError, StackOptions, attached
from support import eventually

PLATFORM = "monitoring"
USERS = ("user07", "user08", "user09")
TOKEN_SECRET_NAME = "retrain-webhook-token"  # noqa: S105  # nosec B105 - a Secret's name
PARTS = ("stable", "canary", "router")


def attach(user: str, **extra: str) -> ReleaseSpec:
    """A user's release, attached to the platform's stack, with an AlertmanagerConfig."""
    return attached(
        user,
        ReleaseSpec(PLATFORM, PLATFORM),
        set_values={
            "alerting.alertmanagerConfig.enabled": "true",
            "alerting.webhook.enabled": "true",
            "alerting.webhook.url": f"http://127.0.0.1:9/{user}",
            **extra,
        },
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    options = StackOptions(
        release=PLATFORM,
        namespace=PLATFORM,
        workdir=tmp_path_factory.mktemp("releases"),
        secrets={TOKEN_SECRET_NAME: {"token": "p" * 32}},
    )
    with LocalStack(options) as running:
        for user in USERS:
            running.install(attach(user))
        yield running


def scraped_namespaces(stack: LocalStack) -> dict[str, set[str]]:
    """Prometheus's healthy targets by namespace. Its targets, not `up`: the last samples of a
    removed target can stay within the query lookback."""
    found: dict[str, set[str]] = {}
    for target in stack.prometheus.targets():
        if target["health"] == "up":
            labels = target["labels"]
            found.setdefault(labels["namespace"], set()).add(labels["service"])
    return found


def rule_files(stack: LocalStack) -> set[str]:
    return {Path(group["file"]).name for group in stack.prometheus.rule_groups()}


def routed_namespaces(stack: LocalStack) -> set[str]:
    """The namespaces Alertmanager routes for, from the configuration it has loaded."""
    status = requests.get(f"{stack.alertmanager_url}/api/v2/status", timeout=10).json()
    config = yaml.safe_load(status["config"]["original"])
    return {
        matcher.split('"')[1]
        for route in config["route"]["routes"]
        for matcher in route.get("matchers", [])
        if matcher.startswith("namespace=")
    }


def test_every_user_is_scraped_ruled_and_routed_in_their_namespace(stack: LocalStack) -> None:
    namespaces = {f"kubeflow-{u}" for u in USERS} | {PLATFORM}
    expected = {
        ns: {f"{ns.removeprefix('kubeflow-')}-model-exporter-{part}" for part in PARTS}
        for ns in namespaces
    }
    eventually(
        lambda: scraped_namespaces(stack),
        lambda found: found == expected,
        30,
        "every release's targets up, each in its namespace",
    )
    releases = {(f"kubeflow-{u}", u) for u in USERS} | {(PLATFORM, PLATFORM)}
    assert rule_files(stack) == {f"{ns}-{name}-model-monitoring.yaml" for ns, name in releases}
    assert routed_namespaces(stack) == {f"kubeflow-{u}" for u in USERS}


def test_a_release_name_or_an_object_another_release_owns_is_refused(stack: LocalStack) -> None:
    with pytest.raises(StackError, match="release user07 is already installed"):
        stack.install(attach("user07"))
    taken = ReleaseSpec(
        name="other",
        namespace="kubeflow-user07",
        set_values={"model-exporter.fullnameOverride": "user07-model-exporter"},
    )
    with pytest.raises(StackError, match="belongs to another release"):
        stack.install(taken)
    assert "other" not in stack.releases


def test_a_secret_of_another_namespace_is_not_the_releases(stack: LocalStack) -> None:
    """The platform's namespace holds the token Secret; a user's release that names it fails
    to start, as on a cluster, and leaves nothing behind."""
    pods_before = {p.name for p in stack.pods}
    needs_token = attach(
        "user10",
        **{
            "model-exporter.retrainWebhook.enabled": "true",
            "model-exporter.retrainWebhook.tokenSecret.name": TOKEN_SECRET_NAME,
        },
    )
    with pytest.raises(ManifestError, match=r"needs Secret .* in namespace kubeflow-user10"):
        stack.install(needs_token)
    assert "user10" not in stack.releases
    assert {p.name for p in stack.pods} == pods_before
    given = dataclasses.replace(needs_token, secrets={TOKEN_SECRET_NAME: {"token": "u" * 32}})
    stack.install(given)
    stack.uninstall("user10")
    assert {p.name for p in stack.pods} == pods_before


def test_an_upgrade_of_one_user_rolls_only_that_users_pods(stack: LocalStack) -> None:
    others = {p.name: p.process for p in stack.pods if not p.name.startswith("user09-")}
    exporters = [
        p.name
        for variant in ("stable", "canary")
        for p in stack.pods_of(f"user09-model-exporter-{variant}")
    ]
    replaced = stack.upgrade({"model-exporter.quality.window": "400"}, release="user09")
    assert sorted(replaced) == sorted(exporters)
    assert {p.name: p.process for p in stack.pods if not p.name.startswith("user09-")} == others


def test_an_uninstall_takes_that_users_parts_and_nothing_else(stack: LocalStack) -> None:
    others = {p.name: p.process for p in stack.pods if not p.name.startswith("user08-")}
    stack.uninstall("user08")
    assert not [p for p in stack.pods if p.name.startswith("user08-")]
    assert {p.name: p.process for p in stack.pods if not p.name.startswith("user08-")} == others
    with pytest.raises(KeyError):
        stack.service_url("user08-model-exporter-router", namespace="kubeflow-user08")
    eventually(
        lambda: scraped_namespaces(stack),
        lambda f: "kubeflow-user08" not in f and {"kubeflow-user07", "kubeflow-user09"} <= set(f),
        30,
        "user08's targets gone, the others' up",
    )
    assert not any("user08" in name for name in rule_files(stack))
    assert routed_namespaces(stack) == {"kubeflow-user07", "kubeflow-user09"}
    with pytest.raises(StackError, match="platform's release"):
        stack.uninstall(PLATFORM)
