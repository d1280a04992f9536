"""The subchart as an engine profile renders it, for the tests of each delivery engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from local_stack import chart

NAMESPACE, RELEASE = "kubeflow-user07", "user07"
FULLNAME = f"{RELEASE}-model-exporter"


def render_profile(
    profile: Path, values_file: Path | None = None, **values: str
) -> list[dict[str, Any]]:
    return chart.render(
        chart.EXPORTER_CHART,
        release=RELEASE,
        namespace=NAMESPACE,
        values_files=[profile, *([values_file] if values_file else [])],
        set_values={"userId": "user07", **values},
    )


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    return found


def chart_gate_values() -> dict[str, Any]:
    values = yaml.safe_load((chart.EXPORTER_CHART / "values.yaml").read_text())
    return dict(values["delivery"]["gate"])


def printed_notes(profile: Path) -> str:
    """What `helm install` prints after NOTES: for the profile."""
    return chart.helm(
        "install",
        RELEASE,
        str(chart.EXPORTER_CHART),
        "--dry-run=client",
        "--namespace",
        NAMESPACE,
        "--values",
        str(profile),
    ).split("NOTES:", 1)[1]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels; In, Exists, DoesNotExist) picks these labels."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "Exists" and value is None:
            return False
        if operator == "DoesNotExist" and value is not None:
            return False
    return True
