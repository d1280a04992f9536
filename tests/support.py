"""Helpers that several test modules share (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, frozenset[tuple[str, str]]]
Z_999 = 3.29  # two-sided 99.9 % normal quantile
T = TypeVar("T")


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


class Deadline(AssertionError):
    """A condition did not hold in time; the message carries what was last seen."""


def eventually(
    probe: Callable[[], T],
    accept: Callable[[T], bool],
    timeout: float,
    what: str,
    logs: Callable[[], str] = lambda: "",
    interval: float = 0.5,
) -> T:
    """Polls `probe` until `accept` takes its result. On timeout, fails with the description,
    the last result and the tail of the logs involved."""
    deadline = time.monotonic() + timeout
    last: object = "(no result yet)"
    while True:
        try:
            result = probe()
            last = result
            if accept(result):
                return result
        except Exception as exc:  # a failing probe is retried until the deadline
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise Deadline(
                f"{what}: not within {timeout:.0f} s\nlast result: {last!r:.2000}\n{logs()}"
            )
        time.sleep(interval)


def within_binomial_bound(successes: int, trials: int, p: float) -> bool:
    """The observed share lies within the 99.9 % normal-approximation bound of p (exact at
    p = 0 or 1, where every trial must agree)."""
    return abs(successes / trials - p) <= Z_999 * math.sqrt(p * (1 - p) / trials)
