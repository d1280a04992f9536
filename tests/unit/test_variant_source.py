"""The exporter's variant read live from its pod's labels, as a downward API volume shows them."""

from __future__ import annotations

import os
from pathlib import Path

from modelmon.contract import VARIANT_POD_LABEL, Variant
from modelmon.variant_source import CHECK_INTERVAL_SECONDS, VariantSource, variant_from_labels


def labels_file(folder: Path, variant: str, name: str = "labels") -> Path:
    """Written the way the kubelet updates a downward API file: a new file renamed over it."""
    staged = folder / f".{name}.new"
    staged.write_text(
        'app.kubernetes.io/name="model-exporter"\n'
        f'{VARIANT_POD_LABEL}="{variant}"\n'
        'rollouts-pod-template-hash="6b7c9d"\n'
    )
    target = folder / name
    os.replace(staged, target)
    return target


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_labels_file_names_the_variant():
    assert variant_from_labels(f'{VARIANT_POD_LABEL}="canary"\n') is Variant.CANARY
    assert variant_from_labels('app="x"\n') is None
    assert variant_from_labels(f'{VARIANT_POD_LABEL}="blue"\n') is None


def test_flaggers_primary_pods_are_stable_by_their_selector_label(tmp_path):
    # Flagger's primary pods carry the canary's labels with "-primary" appended to the value of
    # its selector label (pkg/canary/deployment_controller.go, makePrimaryLabels).
    primary = 'app="user07-model-exporter-primary"\napp.kubernetes.io/name="model-exporter"\n'
    canary = 'app="user07-model-exporter"\napp.kubernetes.io/name="model-exporter"\n'
    assert variant_from_labels(primary, primary_label="app") is Variant.STABLE
    assert variant_from_labels(canary, primary_label="app") is Variant.CANARY
    assert variant_from_labels(canary) is None, "without the rule the labels name no variant"
    assert variant_from_labels(f'{VARIANT_POD_LABEL}="canary"\n{primary}', "app") is (
        Variant.CANARY
    ), "the explicit label wins"
    path = tmp_path / "labels"
    path.write_text(primary)
    assert VariantSource(Variant.CANARY, path, primary_label="app").current is Variant.STABLE


def test_without_a_file_the_flag_decides():
    assert VariantSource(Variant.CANARY).current is Variant.CANARY


def test_a_relabelled_pod_answers_as_its_new_variant_within_the_check_interval(tmp_path):
    clock = Clock()
    path = labels_file(tmp_path, "canary")
    source = VariantSource(Variant.STABLE, path, clock)
    assert source.current is Variant.CANARY, "the file overrides the flag from the start"

    labels_file(tmp_path, "stable")  # promoted
    assert source.current is Variant.CANARY, "not re-read before the interval"
    clock.now += CHECK_INTERVAL_SECONDS
    assert source.current is Variant.STABLE


def test_a_missing_or_unnamed_file_keeps_the_last_variant_known(tmp_path):
    clock = Clock()
    path = labels_file(tmp_path, "canary")
    source = VariantSource(Variant.STABLE, path, clock)
    path.write_text('app="x"\n')
    clock.now += CHECK_INTERVAL_SECONDS
    assert source.current is Variant.CANARY
    path.unlink()
    clock.now += CHECK_INTERVAL_SECONDS
    assert source.current is Variant.CANARY
    missing = VariantSource(Variant.STABLE, tmp_path / "absent", clock)
    assert missing.current is Variant.STABLE
