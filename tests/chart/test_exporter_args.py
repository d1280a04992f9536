"""The exporter's arguments as the chart writes them: parsed by the exporter's own parser, with the
chart's defaults equal to the exporter's (one home each: the flags in modelmon.config)."""

from __future__ import annotations

import pytest

from local_stack import manifests
from manifest_checks import STACK_OFF, VALUES_DIR, render_profile
from modelmon.config import Settings, parse_settings

ATTACH = VALUES_DIR / "users" / "user07.yaml"
BATCHING_FIELDS = (
    "batching",
    "batching_max_rows",
    "batching_max_wait_seconds",
    "batching_queue_rows",
)


def exporter_settings(umbrella, values: dict[str, str] | None = None) -> list[Settings]:
    objects = render_profile(
        umbrella,
        [ATTACH],
        release="user07",
        namespace="kubeflow-user07",
        set_values={**STACK_OFF, **(values or {})},
    )
    found = [
        parse_settings(list(container.args), environ={})
        for workload in manifests.workloads(objects)
        for container in workload.containers
        if container.command[:1] == ("modelmon-exporter",)
    ]
    assert len(found) == 2, "stable and canary"
    return found


def batching(settings: Settings) -> tuple[object, ...]:
    return tuple(getattr(settings, name) for name in BATCHING_FIELDS)


def test_the_charts_batching_defaults_are_the_exporters(umbrella):
    own_defaults = parse_settings([], environ={})
    for settings in exporter_settings(umbrella):
        assert batching(settings) == batching(own_defaults)


def test_batching_values_reach_both_variants(umbrella):
    values = {
        "model-exporter.batching.enabled": "false",
        "model-exporter.batching.maxRows": "256",
        "model-exporter.batching.queueRows": "4096",
    }
    for settings in exporter_settings(umbrella, values):
        assert (settings.batching, settings.batching_max_rows, settings.batching_queue_rows) == (
            False,
            256,
            4096,
        )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("maxRows", "0", "minimum"),
        ("queueRows", "many", "integer"),
        ("hold", "1", "additional properties"),
    ],
)
def test_the_schema_refuses_bad_batching_values(umbrella, key, value, message):
    with pytest.raises(Exception, match=f"(?i){message}"):
        exporter_settings(umbrella, {f"model-exporter.batching.{key}": value})
