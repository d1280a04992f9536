"""Every user Prometheus knows, side by side: a table and a figure."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelmon.contract import (
    DRIFT_SCORE,
    PREDICTION_LATENCY,
    PREDICTIONS,
    USER_LABEL,
    VARIANT_LABEL,
    VARIANTS,
    RecordingRule,
)
from modelmon.ops.errors import OpsError
from modelmon.ops.prometheus import PrometheusAPI
from modelmon.ops.readings import (
    in_variant_order,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure
from modelmon.ops.report.figures import Window, new_figure, no_data, series_times
from modelmon.ops.report.page import Block, Heading, Image, Table, Text


def known_users(api: PrometheusAPI, window: Window) -> list[str]:
    """Every user_id Prometheus has model series of within the window (the dashboard's user
    variable lists the same: the label's values on the prediction counter)."""
    promql = f"group by ({USER_LABEL}) (last_over_time({PREDICTIONS}[{window.seconds:.0f}s]))"
    found = {sample.labels.get(USER_LABEL, "") for sample in api.query(promql, window.end)}
    return sorted(found - {""})


def users_matcher(users: Sequence[str]) -> str:
    if not users:
        raise OpsError("no users to compare: Prometheus has no model series in this range")
    return f'{USER_LABEL}=~"{"|".join(users)}"'


BY_USER = f"{USER_LABEL}, {VARIANT_LABEL}"


def _latency(quantile: float) -> Callable[[str, str], str]:
    bucket = PREDICTION_LATENCY.series()[0]
    return lambda matcher, rate: (
        f"histogram_quantile({quantile}, sum by ({BY_USER}, le) "
        f"(rate({bucket}{{{matcher}}}[{rate}])))"
    )


@dataclass(frozen=True)
class UserMeasure:
    """One measure per user and variant: its column, its plot and its PromQL."""

    title: str
    unit: str  # the axis label
    promql: Callable[[str, str], str]  # (user matcher, rate window) -> query by user and variant
    scale: float = 1.0  # shown in the table as value × scale
    plotted: bool = True


USER_MEASURES = (
    UserMeasure(
        "requests/s",
        "per second",
        lambda m, rate: f"sum by ({BY_USER}) (rate({PREDICTIONS}{{{m}}}[{rate}]))",
    ),
    UserMeasure("p50 ms", "ms", _latency(0.5), 1000.0, plotted=False),
    UserMeasure("p95 ms", "ms", _latency(0.95), 1000.0),
    UserMeasure("p99 ms", "ms", _latency(0.99), 1000.0, plotted=False),
    UserMeasure("MAE", "MAE", lambda m, _r: f"max by ({BY_USER}) ({RecordingRule.MAE}{{{m}}})"),
    UserMeasure(
        "accuracy",
        "share (0..1)",
        lambda m, _r: f"max by ({BY_USER}) ({RecordingRule.ACCURACY}{{{m}}})",
    ),
    UserMeasure("drift (PSI)", "PSI", lambda m, _r: f"max by ({BY_USER}) ({DRIFT_SCORE}{{{m}}})"),
)


def _key(labels: dict[str, str]) -> tuple[str, str]:
    return labels.get(USER_LABEL, ""), labels.get(VARIANT_LABEL, "")


def users_table(api: PrometheusAPI, users: Sequence[str], window: Window) -> Table:
    """Every user and variant in one table: traffic, latency, quality, drift at the end of the
    window, and the alerts firing then."""
    matcher = users_matcher(users)
    values: dict[tuple[str, str], dict[str, float]] = {}
    for measure in USER_MEASURES:
        for sample in api.query(measure.promql(matcher, window.rate_window), window.end):
            measured = values.setdefault(_key(sample.labels), {})
            if math.isfinite(sample.value):  # a quantile or ratio of no requests is NaN
                measured[measure.title] = sample.value
    firing: dict[str, int] = {}
    for alert in api.alerts():
        user = alert.get("labels", {}).get(USER_LABEL, "")
        if alert.get("state") == "firing" and user in users:
            firing[user] = firing.get(user, 0) + 1
    rows = []
    for user in users:
        variants = in_variant_order(v for u, v in values if u == user)
        for variant in variants or [""]:
            measured = values.get((user, variant), {})
            cells = [
                f"{measured[m.title] * m.scale:.4g}" if m.title in measured else "-"
                for m in USER_MEASURES
            ]
            rows.append((user, variant or "-", *cells, str(firing.get(user, 0))))
    header = ("user", "variant", *(m.title for m in USER_MEASURES), "alerts firing")
    return Table(header, tuple(rows), (False, False, *(True for _ in USER_MEASURES), True))


VARIANT_STYLES = dict(zip((str(v) for v in VARIANTS), ("-", "--"), strict=True))


def _in_order(user: str, variant: str) -> tuple[str, int, str]:
    """Users by name, each one's variants as the contract orders them (stable, canary)."""
    return user, list(VARIANT_STYLES).index(variant) if variant in VARIANT_STYLES else 9, variant


def users_figure(api: PrometheusAPI, users: Sequence[str], window: Window) -> Figure:
    """Every user's traffic, p95 latency, MAE, accuracy and drift over the window, one plot per
    measure stacked on one time axis: a colour per user, solid for stable, dashed for canary."""
    matcher = users_matcher(users)
    measures = [m for m in USER_MEASURES if m.plotted]
    figure = new_figure(10, 2.1 * len(measures) + 0.8)
    colours = {user: f"C{i % 10}" for i, user in enumerate(users)}
    grid = figure.subplots(len(measures), 1, sharex=True, squeeze=False)
    for axes, measure in zip(grid[:, 0], measures, strict=True):
        promql = measure.promql(matcher, window.rate_window)
        found = api.query_range(promql, window.start, window.end, window.step)
        found.sort(key=lambda series: _in_order(*_key(series.labels)))
        for series in found:
            user, variant = _key(series.labels)
            axes.plot(
                series_times(series),
                [v * measure.scale for _t, v in series.points],
                color=colours.get(user, "grey"),
                linestyle=VARIANT_STYLES.get(variant, ":"),
                label=f"{user} {variant}",
            )
        if not found:
            no_data(axes)
        axes.set_ylabel(measure.unit)
        axes.set_title(measure.title, fontsize="medium", loc="left")
        if found:
            axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    figure.suptitle(f"Every user side by side: {', '.join(users)}")
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


def users_blocks(
    api: PrometheusAPI, users: Sequence[str], window: Window, out: Path
) -> list[Block]:
    users_figure(api, users, window).savefig(out / "users.png")
    return [
        Heading(2, "Every user side by side"),
        Text(f"Users with model series in this range: {', '.join(users)}."),
        users_table(api, users, window),
        Image("Every user side by side", "users.png"),
    ]
