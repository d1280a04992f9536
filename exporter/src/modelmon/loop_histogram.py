"""A histogram for the event loop's hot path: observed without locks, exposed at scrape.

prometheus_client's Histogram takes two locks per observation so that any thread may observe
(about 1 µs each). /predict observes twice per request on the event loop, the one thread that
serves every request; counting there with plain integers costs a third of that. The price: only
the event loop may observe (a second thread could lose increments). A scrape, on another
thread, reads a copy of the counts, so each exposition is self-consistent: +Inf equals _count.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence

from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from modelmon import contract


class Buckets:
    """Counts of observations per bucket, and their sum; observe() from the event loop only."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = [float(b) for b in bounds]
        self._counts = [0] * (len(self._bounds) + 1)  # the last one: above every bound
        self._sum = 0.0

    def observe(self, amount: float) -> None:
        # bisect_left: the first bound >= amount, so a value on a bound counts in it (le).
        self._counts[bisect_left(self._bounds, amount)] += 1
        self._sum += amount

    def snapshot(self) -> tuple[list[tuple[str, float]], float]:
        """(le, cumulative count) per bucket, as Histogram writes them, and the sum: a copy."""
        counts, total = list(self._counts), self._sum
        cumulative, buckets = 0, []
        for bound, count in zip([*self._bounds, math.inf], counts, strict=True):
            cumulative += count
            le = floatToGoString(bound)  # type: ignore[no-untyped-call]  # as Histogram writes it
            buckets.append((le, float(cumulative)))
        return buckets, total


def checked_buckets(name: str, buckets: Sequence[float]) -> Sequence[float]:
    if list(buckets) != sorted(set(buckets)) or not buckets:
        raise ValueError(f"{name}: buckets must rise, got {list(buckets)}")
    return buckets


class LoopHistogram(Collector):
    """One labelled histogram series of a contract metric; observe() from the event loop only."""

    def __init__(
        self, spec: contract.Metric, label_values: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self._spec = spec
        self._label_values = list(label_values)
        self._buckets = Buckets(checked_buckets(spec.name, buckets))
        self.observe = self._buckets.observe

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self._spec.name, self._spec.help, labels=self._spec.labels)]

    def collect(self) -> Iterable[Metric]:
        buckets, total = self._buckets.snapshot()
        family = HistogramMetricFamily(self._spec.name, self._spec.help, labels=self._spec.labels)
        family.add_metric(self._label_values, buckets, total)
        return [family]
