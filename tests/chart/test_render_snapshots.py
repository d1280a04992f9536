"""Every object the charts render for a fixed set of profiles, held as a snapshot.

A change to a template, a helper or a default shows here as a diff of rendered objects, to be
reviewed and accepted with `.venv/bin/pytest tests/chart/test_render_snapshots.py
--snapshot-update`. The profiles cover every branch of the subchart's templates (each option on,
each split mode) and the umbrella's own objects with the stack off, so the snapshots do not
depend on the kube-prometheus-stack chart being present.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from local_stack import chart
from local_stack.toolchain import REPO_ROOT

NAMESPACE = "kubeflow-user07"
SUBCHART_CI = chart.EXPORTER_CHART / "ci"
DIGEST = "sha256:" + "0123456789abcdef" * 4

EVERY_OPTION: dict[str, Any] = {
    "canary": {"enabled": True},
    "networkPolicy": {"enabled": True},
    "podDisruptionBudget": {"enabled": True},
    "retrainWebhook": {"enabled": True, "tokenSecret": {"name": "retrain-webhook-token"}},
}

SUBCHART_PROFILES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "every-option": EVERY_OPTION,
    "every-option-autoscaled-and-scheduled": {
        **EVERY_OPTION,
        "autoscaling": {"enabled": True},
        "imagePullSecrets": [{"name": "registry"}],
        "nodeSelector": {"kubernetes.io/arch": "amd64"},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {
                                "matchLabels": {"app.kubernetes.io/name": "model-exporter"}
                            },
                        },
                    }
                ]
            }
        },
        "podAnnotations": {"example.com/team": "ml"},
        "extraVolumes": [{"name": "models", "emptyDir": {"medium": "Memory"}}],
        "extraVolumeMounts": [{"name": "models", "mountPath": "/models"}],
    },
    "ingress-nginx-split": {**EVERY_OPTION, "ingressNginx": {"enabled": True}},
    "gateway-api-split": {
        **EVERY_OPTION,
        "gatewayAPI": {
            "enabled": True,
            "parentRefs": [{"name": "gateway", "namespace": "gateway-system"}],
            "hostnames": ["models.example.com"],
        },
    },
    "webhook-dispatching-attached": {
        **EVERY_OPTION,
        "monitoring": {"stackRelease": "kube-prometheus-stack"},
        "retrainWebhook": {
            "enabled": True,
            "dryRun": False,
            "githubRepo": "model-monitoring/model-monitoring",
            "tokenSecret": {"name": "retrain-webhook-token"},
            "githubTokenSecret": {"name": "github-token"},
            "networkPolicy": {
                "alertmanagerNamespaceSelector": {"matchLabels": {"team": "platform"}}
            },
        },
    },
    "platform-settings": {
        **EVERY_OPTION,
        "podLabels": {"team": "ml"},
        "priorityClassName": "model-serving",
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
            }
        ],
        "extraEnv": [{"name": "OTEL_SERVICE_NAME", "value": "model-exporter"}],
        "serviceAccount": {"annotations": {"iam.gke.io/gcp-service-account": "m@p.iam"}},
        "serviceMonitor": {"enabled": False},
        "podMonitor": {
            "enabled": True,
            "metricRelabelings": [
                {"sourceLabels": ["__name__"], "regex": "go_.*", "action": "drop"}
            ],
        },
        "networkPolicy": {"egress": {"enabled": True}},
        "ingressNginx": {"enabled": True, "tls": [{"secretName": "models-tls"}]},
        "startupProbe": None,
    },
    "digest-no-prestop-renamed": {
        "preStopSleepSeconds": 0,
        "image": {"digest": DIGEST},
        "fullnameOverride": "model",
        "commonLabels": {"example.com/cost-centre": "ml"},
    },
}

# chart-testing's profiles of the subchart, as the values they hold
SUBCHART_PROFILES |= {
    f"ci/{path.name}": yaml.safe_load(path.read_text())
    for path in sorted(SUBCHART_CI.glob("*-values.yaml"))
}

UMBRELLA_PROFILES = {
    "defaults": [],
    "user07": [REPO_ROOT / "values" / "users" / "user07.yaml"],
    "local": [REPO_ROOT / "values" / "local.yaml"],
}


def as_snapshot(objects: list[dict[str, Any]]) -> str:
    ordered = sorted(objects, key=lambda o: (o["kind"], o["metadata"]["name"]))
    return yaml.safe_dump_all(ordered, sort_keys=True, width=100)


@pytest.mark.parametrize("profile", sorted(SUBCHART_PROFILES))
def test_subchart_renders_as_its_snapshot(profile, tmp_path, snapshot) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(SUBCHART_PROFILES[profile]))
    objects = chart.render(
        chart.EXPORTER_CHART,
        release="r1",
        namespace=NAMESPACE,
        values_files=[values],
    )
    assert as_snapshot(objects) == snapshot


@pytest.mark.parametrize("profile", sorted(UMBRELLA_PROFILES))
def test_umbrella_renders_as_its_snapshot(profile, umbrella, snapshot) -> None:
    objects = chart.render(
        umbrella,
        release="r1",
        namespace=NAMESPACE,
        values_files=UMBRELLA_PROFILES[profile],
        set_values={"kube-prometheus-stack.enabled": "false"},
    )
    assert as_snapshot(objects) == snapshot
