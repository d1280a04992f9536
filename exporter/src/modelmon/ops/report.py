"""report: the panels of the shipped Grafana dashboard for one user over a time range (plots for
time series, tables for the rest), the alert states and a drift summary, on one Markdown page.

The panels and their queries are read from the dashboard JSON itself (package data, the same file
the chart ships), so a panel added to the dashboard appears in the report.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from modelmon.contract import FEATURE_DRIFT_SCORE, USER_LABEL, VARIANT_LABEL
from modelmon.ops.errors import OpsError
from modelmon.ops.prometheus import PrometheusAPI, Scope, Series
from modelmon.ops.readings import alert_conditions, format_conditions, format_quality, read_quality

DASHBOARD = "model-monitoring.json"
# The dashboard's user variable, as every query selects it; the report puts the scope there.
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


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's legendFormat: {{label}} replaced by the series' value of it."""
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), template).strip()
    return text or ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "value"


def _plot(pyplot: Any, panel: Panel, data: list[tuple[str, Series]], path: Path) -> None:
    figure, axes = pyplot.subplots(figsize=(9, 3.2), dpi=100)
    try:
        if not data:
            axes.text(0.5, 0.5, "no data in this range", ha="center", va="center")
        for label, series in data:
            times = [datetime.fromtimestamp(t) for t, _v in series.points]
            axes.plot(times, [v for _t, v in series.points], label=label)
        axes.set_title(panel.title)
        axes.set_ylabel(UNITS.get(panel.unit, ""))
        figure.autofmt_xdate()
        if data:
            axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
        figure.tight_layout()
        figure.savefig(path)
    finally:
        pyplot.close(figure)


def _matplotlib() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError as exc:
        raise OpsError(
            "report needs matplotlib: pip install 'modelmon[report]' (or pip install matplotlib)"
        ) from exc
    return pyplot


@dataclass(frozen=True)
class Window:
    scope: Scope
    start: float
    end: float
    rate_window: str

    def query(self, target: Target) -> str:
        return fill(target.expr, self.scope, self.rate_window, self.end - self.start)


def _panel_section(api: PrometheusAPI, panel: Panel, window: Window, out: Path) -> list[str]:
    if panel.plotted:
        step = max(1.0, (window.end - window.start) / 300)
        data = [
            (legend(target.legend, series.labels), series)
            for target in panel.targets
            for series in api.query_range(window.query(target), window.start, window.end, step)
        ]
        _plot(_matplotlib(), panel, data, out / panel.file)
        return [f"### {panel.title}", "", f"![{panel.title}]({panel.file})", ""]
    rows = [
        f"| {legend(target.legend, sample.labels)} | {sample.value:.4g} |"
        for target in panel.targets
        for sample in api.query(window.query(target))
    ]
    return [f"### {panel.title}", "", "| series | now |", "|---|---:|", *rows, ""]


def drift_lines(api: PrometheusAPI, scope: Scope) -> list[str]:
    samples = api.query(f"{FEATURE_DRIFT_SCORE}{{{scope.matchers()}}}")
    if not samples:
        return ["No drift scores in Prometheus yet (the exporter scores drift once it has inputs)."]
    by_variant: dict[str, list[tuple[float, str]]] = {}
    for sample in samples:
        by_variant.setdefault(sample.labels.get(VARIANT_LABEL, ""), []).append(
            (sample.value, sample.labels.get("feature", ""))
        )
    lines = ["| variant | overall (max PSI) | top features |", "|---|---:|---|"]
    for variant, scores in sorted(by_variant.items()):
        scores.sort(reverse=True)
        top = ", ".join(f"{feature} {score:.3f}" for score, feature in scores[:3])
        lines.append(f"| {variant} | {scores[0][0]:.3f} | {top} |")
    lines += ["", "PSI below 0.1: no shift; 0.1 to 0.25: moderate; above 0.25: significant."]
    return lines


def write_report(
    api: PrometheusAPI,
    scope: Scope,
    since_seconds: float,
    out: Path,
    rate_window: str,
    on_panel: Callable[[str], None] | None = None,
) -> Path:
    _matplotlib()  # refuse at once, not after the first queries, without matplotlib
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OpsError(f"cannot write to {out}: {exc.strerror}") from exc
    end = time.time()
    window = Window(scope, end - since_seconds, end, rate_window)
    sections: list[str] = []
    for panel in dashboard_panels():
        sections += _panel_section(api, panel, window, out)
        if on_panel is not None:
            on_panel(panel.title)
    user = scope.user + (f" in {scope.namespace}" if scope.namespace else "")
    shown = "%Y-%m-%d %H:%M:%S"
    page = [
        f"# Model report: {user}",
        "",
        f"From {time.strftime(shown, time.localtime(window.start))} to "
        f"{time.strftime(shown, time.localtime(end))} ({since_seconds:g} s), "
        f"Prometheus {api.url}; the panels of the dashboard {DASHBOARD}.",
        "",
        "## Quality now",
        "",
        "```",
        *format_quality(read_quality(api, scope)),
        "```",
        "",
        "## Alerts now",
        "",
        "```",
        *format_conditions(alert_conditions(api, scope)),
        "```",
        "",
        "## Drift",
        "",
        *drift_lines(api, scope),
        "",
        "## Dashboard panels",
        "",
        *sections,
    ]
    path = out / "report.md"
    path.write_text("\n".join(page))
    return path
