"""The event loop's histogram exposes exactly what prometheus_client's Histogram would."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from modelmon import contract
from modelmon.loop_histogram import LoopHistogram

LABELS = ["stable", "1.0.0", "user07"]


def exposition(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


@given(
    st.lists(
        st.one_of(
            st.sampled_from(contract.LATENCY_BUCKETS),  # on a bound: counts in it (le)
            st.floats(min_value=0, max_value=10, allow_nan=False),
        ),
        max_size=50,
    )
)
def test_it_exposes_what_prometheus_clients_histogram_exposes(values):
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    spec = contract.PREDICTION_LATENCY
    loop = LoopHistogram(spec, LABELS, contract.LATENCY_BUCKETS)
    ours.register(loop)
    reference = Histogram(
        spec.client_name,
        spec.help,
        list(spec.labels),
        registry=theirs,
        buckets=contract.LATENCY_BUCKETS,
    ).labels(*LABELS)
    for value in values:
        loop.observe(value)
        reference.observe(value)
    assert exposition(ours) == exposition(theirs)


def test_buckets_that_do_not_rise_are_refused():
    with pytest.raises(ValueError, match="buckets must rise"):
        LoopHistogram(contract.PREDICTION_LATENCY, LABELS, (0.5, 0.1))
