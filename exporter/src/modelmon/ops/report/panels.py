"""The shipped Grafana dashboard's panels: read from its JSON, queried, plotted or tabled."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelmon.contract import (
    USER_LABEL,
)
from modelmon.ops.errors import OpsError
from modelmon.ops.prometheus import PrometheusAPI, Scope

if TYPE_CHECKING:
    from matplotlib.figure import Figure
from modelmon.ops.report.figures import Window, finish, new_figure, no_data, series_times
from modelmon.ops.report.page import Block, Heading, Image, Table

DASHBOARD = "model-monitoring.json"
USER_MATCHER = f'{USER_LABEL}=~"$user_id"'
PLOTTED_KINDS = ("timeseries",)
UNITS = {"s": "seconds", "reqps": "per second", "percentunit": "share (0..1)"}


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    id: int
    kind: str  # Grafana's panel type
    title: str
    unit: str
    targets: tuple[Target, ...]

    @property
    def plotted(self) -> bool:
        return self.kind in PLOTTED_KINDS

    @property
    def file(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")
        return f"panel-{self.id:02d}-{slug}.png"


def load_dashboard() -> dict[str, Any]:
    text = resources.files("modelmon").joinpath("dashboards", DASHBOARD).read_text()
    dashboard: dict[str, Any] = json.loads(text)
    return dashboard


def dashboard_panels(dashboard: dict[str, Any] | None = None) -> list[Panel]:
    """Every panel of the dashboard that has queries, in the dashboard's order."""
    panels = []
    for panel in (dashboard or load_dashboard())["panels"]:
        targets = tuple(
            Target(t["expr"], t.get("legendFormat", "")) for t in panel.get("targets", [])
        )
        if targets:
            unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
            panels.append(Panel(panel["id"], panel["type"], panel["title"], unit, targets))
    return panels


def panel_named(title: str) -> Panel:
    """The dashboard's panel with this title."""
    panels = dashboard_panels()
    for panel in panels:
        if panel.title == title:
            return panel
    raise OpsError(f"no panel {title!r}; the dashboard has {', '.join(p.title for p in panels)}")


def fill(expr: str, scope: Scope, rate_window: str, range_seconds: float) -> str:
    """A dashboard query with Grafana's variables replaced as the report needs them."""
    filled = (
        expr.replace(USER_MATCHER, scope.matchers())
        .replace("$__rate_interval", rate_window)
        .replace("$__range", f"{range_seconds:.0f}s")
    )
    left = re.findall(r"\$\{?\w+", filled)
    if left:
        raise OpsError(f"dashboard query {expr!r}: the report cannot fill {', '.join(left)}")
    return filled


def filled(target: Target, window: Window) -> str:
    return fill(target.expr, window.scope, window.rate_window, window.seconds)


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's legendFormat: {{label}} replaced by the series' value of it."""
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), template).strip()
    return text or ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "value"


def panel_figure(api: PrometheusAPI, panel: Panel, window: Window) -> Figure:
    """A time-series panel of the dashboard as a plot, for the window's user."""
    data = [
        (legend(target.legend, series.labels), series)
        for target in panel.targets
        for series in api.query_range(filled(target, window), window.start, window.end, window.step)
    ]
    figure = new_figure(9, 3.2)
    axes = figure.add_subplot()
    if not data:
        no_data(axes)
    for label, series in data:
        axes.plot(series_times(series), [v for _t, v in series.points], label=label)
    finish(figure, axes, panel.title, UNITS.get(panel.unit, ""), bool(data))
    return figure


def panel_table(api: PrometheusAPI, panel: Panel, window: Window) -> Table:
    """A panel that is not a time series, as its values at the end of the window."""
    rows = tuple(
        (legend(target.legend, sample.labels), f"{sample.value:.4g}")
        for target in panel.targets
        for sample in api.query(filled(target, window), window.end)
    )
    return Table(("series", "now"), rows, (False, True))


def panel_blocks(api: PrometheusAPI, panel: Panel, window: Window, out: Path) -> list[Block]:
    heading = Heading(3, panel.title)
    if panel.plotted:
        panel_figure(api, panel, window).savefig(out / panel.file)
        return [heading, Image(panel.title, panel.file)]
    return [heading, panel_table(api, panel, window)]
