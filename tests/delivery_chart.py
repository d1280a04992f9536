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
