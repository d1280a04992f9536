"""The exporter's arguments as the chart writes them: parsed by the exporter's own parser, with the
chart's defaults equal to the exporter's (one home each: the flags in modelmon.config)."""

from __future__ import annotations

import pytest
from delivery_chart import RELEASE, printed_notes

from local_stack import chart, manifests
from manifest_checks import render_attached
from modelmon.config import Settings, parse_settings

BATCHING_FIELDS = (
    "batching",
    "batching_max_rows",
    "batching_max_wait_seconds",
    "batching_queue_rows",
)


def exporter_settings(umbrella, values: dict[str, str] | None = None) -> list[Settings]:
    objects = render_attached(umbrella, values)
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


DATASET_FIELDS = (
    "feedback_dataset_flush_rows",
    "feedback_dataset_flush_seconds",
    "feedback_dataset_max_buffered_rows",
)
DATASET_MOUNT = "/var/lib/modelmon/feedback"


def test_the_feedback_dataset_is_on_by_default_on_the_releases_claim_with_the_exporters_defaults(
    umbrella,
):
    own_defaults = parse_settings([], environ={})
    settings = exporter_settings(umbrella)
    for one in settings:
        assert one.feedback_dataset_url == DATASET_MOUNT
        assert [getattr(one, f) for f in DATASET_FIELDS] == [
            getattr(own_defaults, f) for f in DATASET_FIELDS
        ]
    objects = render_attached(umbrella, {})
    [claim] = manifests.claims(objects)
    assert claim.name == "user07-model-exporter-feedback"
    assert claim.kept_on_uninstall
    for workload in manifests.workloads(objects):
        if workload.container.command[:1] == ("modelmon-exporter",):
            volume = workload.container.mounts[DATASET_MOUNT]
            assert workload.claim_volumes[volume] == claim.name


def test_an_object_store_url_needs_no_volume_and_off_means_no_flag(umbrella):
    url = "s3://models/feedback/user07"
    objects = render_attached(umbrella, {"model-exporter.feedbackDataset.url": url})
    assert manifests.claims(objects) == []
    for one in exporter_settings(umbrella, {"model-exporter.feedbackDataset.url": url}):
        assert one.feedback_dataset_url == url
    for one in exporter_settings(umbrella, {"model-exporter.feedbackDataset.enabled": "false"}):
        assert one.feedback_dataset_url == ""
    ephemeral = render_attached(
        umbrella, {"model-exporter.feedbackDataset.persistence.enabled": "false"}
    )
    assert manifests.claims(ephemeral) == []
    for workload in manifests.workloads(ephemeral):
        if workload.container.command[:1] == ("modelmon-exporter",):
            assert workload.container.mounts[DATASET_MOUNT] in workload.empty_dir_volumes


def test_the_notes_say_where_the_labels_are_kept(tmp_path):
    claim = printed_notes(chart.EXPORTER_CHART / "ci" / "01-standalone-values.yaml")
    assert f"PersistentVolumeClaim {RELEASE}-model-exporter-feedback (kept by helm uninstall)" in (
        claim
    )
    profile = tmp_path / "s3.yaml"
    profile.write_text("feedbackDataset:\n  url: s3://lab-feedback/user07\n")
    assert "Parquet files in s3://lab-feedback/user07." in printed_notes(profile)
    profile.write_text("feedbackDataset:\n  enabled: false\n")
    assert "kept for retraining" not in printed_notes(profile)
