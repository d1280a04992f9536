"""Each variant's state since the canary started, read from Prometheus with the gate's queries."""

from __future__ import annotations

import math
from dataclasses import dataclass

from modelmon.contract import Variant
from modelmon.gate.decision import Decision, GatePolicy, VariantState, judge
from modelmon.gate.promql import QueryParams, VariantQueries
from modelmon.gate.sequential import Sums
from modelmon.ops.prometheus import PrometheusAPI


@dataclass(frozen=True)
class GateReading:
    stable: VariantState
    canary: VariantState
    decision: Decision


def read_state(
    api: PrometheusAPI, queries: VariantQueries, at: float | None = None
) -> VariantState:
    def value(promql: str) -> float:
        found = api.value(promql, at)
        return math.nan if found is None else found

    predictions = value(queries.predictions)
    return VariantState(
        predictions=predictions,
        labellable=value(queries.labellable),
        errors=value(queries.errors),
        absolute_errors=Sums(
            value(queries.feedback), value(queries.absolute_error), value(queries.squared_error)
        ),
        latency_p95_seconds=value(queries.latency_p95_seconds),
        drift_score=value(queries.drift_score),
        outputs=Sums(predictions, value(queries.output_total), value(queries.output_squared)),
    )


def read_and_judge(
    api: PrometheusAPI,
    matchers: str,
    window: str,
    label_delay: str,
    policy: GatePolicy,
    at: float | None = None,
) -> GateReading:
    """`window` and `label_delay` are PromQL durations (e.g. 1h, 30m, 0s)."""
    params = QueryParams.of(matchers, window, label_delay, policy)
    stable, canary = (
        read_state(api, VariantQueries(params, variant), at)
        for variant in (Variant.STABLE, Variant.CANARY)
    )
    return GateReading(stable, canary, judge(stable, canary, policy))
