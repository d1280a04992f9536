"""NOTES.txt, as `helm install` prints it: the port-forward lines name the stack's Services
(`stackServices`, one value), and those are the Services kube-prometheus-stack really makes."""

from __future__ import annotations

import re
from pathlib import Path

from local_stack import chart, manifests
from manifest_checks import VALUES_DIR, render_profile


def notes(umbrella: Path, release: str, *settings: str) -> str:
    args = ["install", release, str(umbrella), "--dry-run=client", "--namespace", "monitoring"]
    for setting in ("kube-prometheus-stack.enabled=true", *settings):
        args += ["--set", setting]
    return chart.helm(*args).split("NOTES:", 1)[1]


def forwarded(text: str) -> list[str]:
    return re.findall(r"port-forward svc/(\S+)", text)


def test_the_port_forward_lines_name_the_stacks_services_from_one_value(umbrella):
    assert forwarded(notes(umbrella, "monitoring")) == [
        "monitoring-kube-prometheus-prometheus",
        "monitoring-kube-prometheus-alertmanager",
        "monitoring-grafana",
    ]
    renamed = notes(
        umbrella,
        "observability-platform",
        "stackServices.prometheus=obs-prometheus",
        "stackServices.alertmanager=obs-alertmanager",
    )
    assert forwarded(renamed) == [
        "obs-prometheus",
        "obs-alertmanager",
        "observability-platform-grafana",
    ]


def test_the_defaults_are_the_names_kube_prometheus_stack_gives(stack_chart, umbrella):
    objects = render_profile(
        umbrella, [VALUES_DIR / "prod.yaml"], release="monitoring", namespace="monitoring"
    )
    services = {s["metadata"]["name"] for s in manifests.of_kind(objects, "Service")}
    assert set(forwarded(notes(umbrella, "monitoring"))) <= services
