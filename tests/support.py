"""Helpers that several test modules share (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, frozenset[tuple[str, str]]]


def parse_samples(exposition: str) -> dict[Sample, float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def only_value(samples: Mapping[Sample, float], name: str, **labels: str) -> float:
    """The value of the one series named `name` whose labels include `labels`."""
    found = [
        value
        for (sample_name, sample_labels), value in samples.items()
        if sample_name == name and set(labels.items()) <= sample_labels
    ]
    assert len(found) == 1, f"{name}{labels}: {len(found)} series"
    return found[0]
