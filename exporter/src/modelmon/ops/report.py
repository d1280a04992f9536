"""report: the panels of the shipped Grafana dashboard for one user over a time range (plots for
time series, tables for the rest), the alert states as a timeline, the drift per feature and over
time, and, on request, every user side by side; one page written as Markdown and as HTML.

The panels and their queries are read from the dashboard JSON itself (package data, the same file
the chart ships), so a panel added to the dashboard appears in the report. The other views are
functions of their own, so the lab's notebooks (notebooks/) show the same figures and tables:
each returns a matplotlib Figure or a Table, which a notebook displays as it is.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelmon.contract import (
    DRIFT_SCORE,
    FEATURE_DRIFT_SCORE,
    MEASURE_LABEL,
    PREDICTION_LATENCY,
    PREDICTIONS,
    THRESHOLD_ANNOTATION,
    USER_LABEL,
    VARIANT_LABEL,
    VARIANTS,
    Measure,
    RecordingRule,
)
from modelmon.ops.errors import OpsError
from modelmon.ops.prometheus import PrometheusAPI, Scope, Series, _unix_time
from modelmon.ops.readings import (
    alert_conditions,
    format_conditions,
    format_quality,
    in_variant_order,
    read_quality,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import NDArray

DASHBOARD = "model-monitoring.json"
# The dashboard's user variable, as every query selects it; the report puts the scope there.
USER_MATCHER = f'{USER_LABEL}=~"$user_id"'
PLOTTED_KINDS = ("timeseries",)
UNITS = {"s": "seconds", "reqps": "per second", "percentunit": "share (0..1)"}
FEATURE_LABEL = FEATURE_DRIFT_SCORE.labels[-1]
# Prometheus's own series of the alerts that are pending or firing (not one of our metrics).
ALERTS_SERIES = "ALERTS"
ALERT_STATE_LABEL = "alertstate"
STATE_COLOURS = {"pending": "#f2a93b", "firing": "#d62728"}
SHOWN_TIME = "%Y-%m-%d %H:%M:%S"
POINTS = 300  # points per plotted series over the range

# -- the page: blocks written as Markdown and as HTML ---------------------------------------


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Code:
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Image:
    title: str
    file: str  # beside the page


@dataclass(frozen=True)
class Table:
    """A table of text cells; `numeric` columns are right-aligned. A notebook shows it as it is
    (it has Jupyter's Markdown and HTML representations)."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...] = ()

    def _right(self, column: int) -> bool:
        return column < len(self.numeric) and self.numeric[column]

    def markdown(self) -> list[str]:
        rule = ["---:" if self._right(i) else "---" for i in range(len(self.header))]
        return [
            "| " + " | ".join(self.header) + " |",
            "|" + "|".join(rule) + "|",
            *("| " + " | ".join(row) + " |" for row in self.rows),
        ]

    def html(self) -> str:
        def cells(tag: str, row: Sequence[str]) -> str:
            return "".join(
                f"<{tag}{' class=num' if self._right(i) else ''}>{html.escape(c)}</{tag}>"
                for i, c in enumerate(row)
            )

        body = "".join(f"<tr>{cells('td', row)}</tr>" for row in self.rows)
        return f"<table><tr>{cells('th', self.header)}</tr>{body}</table>"

    def _repr_markdown_(self) -> str:
        return "\n".join(self.markdown())

    def _repr_html_(self) -> str:
        return self.html()


Block = Heading | Text | Code | Image | Table


def to_markdown(blocks: Iterable[Block]) -> str:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Text):
            lines.append(block.text)
        elif isinstance(block, Code):
            lines += ["```", *block.lines, "```"]
        elif isinstance(block, Image):
            lines.append(f"![{block.title}]({block.file})")
        else:
            lines += block.markdown()
        lines.append("")
    return "\n".join(lines)


HTML_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.2em .6em}"
    "th{background:#f3f3f3}.num{text-align:right}pre{background:#f6f6f6;padding:.6em}"
    "img{max-width:100%}"
)


def to_html(blocks: Iterable[Block], title: str, images: Path) -> str:
    """One self-contained page: each image is embedded as a base64 data URI, so the file can be
    mailed or kept as a CI artifact alone."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Text):
            parts.append(f"<p>{html.escape(block.text)}</p>")
        elif isinstance(block, Code):
            parts.append(f"<pre>{html.escape(chr(10).join(block.lines))}</pre>")
        elif isinstance(block, Image):
            data = base64.b64encode((images / block.file).read_bytes()).decode()
            alt = html.escape(block.title, quote=True)
            parts.append(f'<img alt="{alt}" src="data:image/png;base64,{data}">')
        else:
            parts.append(block.html())
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{HTML_STYLE}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


# -- figures --------------------------------------------------------------------------------


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib Figure of its own (no pyplot, so no global backend is switched: a notebook
    keeps its inline plots, and threads do not share state)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise OpsError(
            "report needs matplotlib: pip install 'modelmon[report]' (or pip install matplotlib)"
        ) from exc
    return Figure(figsize=(width, height), dpi=100)


def _local(at: float) -> datetime:
    return datetime.fromtimestamp(at)


def _times(series: Series) -> NDArray[np.datetime64]:
    """The series' times as local wall-clock times, as the axes show them."""
    return np.array([_local(t) for t, _v in series.points], dtype="datetime64[ms]")


def _no_data(axes: Axes) -> None:
    axes.text(0.5, 0.5, "no data in this range", ha="center", va="center")


def _finish(figure: Figure, axes: Axes, title: str, ylabel: str, legend: bool) -> None:
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    if legend:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    figure.autofmt_xdate()
    figure.tight_layout()


# -- the dashboard's panels -----------------------------------------------------------------


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


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's legendFormat: {{label}} replaced by the series' value of it."""
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), template).strip()
    return text or ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "value"


@dataclass(frozen=True)
class Window:
    """Whose series, over which range (Unix times), with which range for rate()."""

    scope: Scope
    start: float
    end: float
    rate_window: str

    @classmethod
    def ending_now(cls, scope: Scope, since_seconds: float, rate_window: str) -> Window:
        end = time.time()
        return cls(scope, end - since_seconds, end, rate_window)

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def step(self) -> float:
        return max(1.0, self.seconds / POINTS)

    def query(self, target: Target) -> str:
        return fill(target.expr, self.scope, self.rate_window, self.seconds)

    def describe(self) -> str:
        """E.g. "2026-05-01 12:00:00 to 2026-05-01 13:00:00 (3600 s)", in local time."""
        start = time.strftime(SHOWN_TIME, time.localtime(self.start))
        end = time.strftime(SHOWN_TIME, time.localtime(self.end))
        return f"{start} to {end} ({self.seconds:g} s)"


def panel_figure(api: PrometheusAPI, panel: Panel, window: Window) -> Figure:
    """A time-series panel of the dashboard as a plot, for the window's user."""
    data = [
        (legend(target.legend, series.labels), series)
        for target in panel.targets
        for series in api.query_range(window.query(target), window.start, window.end, window.step)
    ]
    figure = new_figure(9, 3.2)
    axes = figure.add_subplot()
    if not data:
        _no_data(axes)
    for label, series in data:
        axes.plot(_times(series), [v for _t, v in series.points], label=label)
    _finish(figure, axes, panel.title, UNITS.get(panel.unit, ""), bool(data))
    return figure


def panel_table(api: PrometheusAPI, panel: Panel, window: Window) -> Table:
    """A panel that is not a time series, as its values at the end of the window."""
    rows = tuple(
        (legend(target.legend, sample.labels), f"{sample.value:.4g}")
        for target in panel.targets
        for sample in api.query(window.query(target), window.end)
    )
    return Table(("series", "now"), rows, (False, True))


def _panel_blocks(api: PrometheusAPI, panel: Panel, window: Window, out: Path) -> list[Block]:
    heading = Heading(3, panel.title)
    if panel.plotted:
        panel_figure(api, panel, window).savefig(out / panel.file)
        return [heading, Image(panel.title, panel.file)]
    return [heading, panel_table(api, panel, window)]


# -- every user side by side ----------------------------------------------------------------


def known_users(api: PrometheusAPI, window: Window) -> list[str]:
    """Every user_id Prometheus has model series of within the window (the dashboard's user
    variable lists the same: the label's values on the prediction counter)."""
    promql = f"group by ({USER_LABEL}) (last_over_time({PREDICTIONS}[{window.seconds:.0f}s]))"
    found = {sample.labels.get(USER_LABEL, "") for sample in api.query(promql, window.end)}
    return sorted(found - {""})


def _users_matcher(users: Sequence[str]) -> str:
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
    matcher = _users_matcher(users)
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
    matcher = _users_matcher(users)
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
                _times(series),
                [v * measure.scale for _t, v in series.points],
                color=colours.get(user, "grey"),
                linestyle=VARIANT_STYLES.get(variant, ":"),
                label=f"{user} {variant}",
            )
        if not found:
            _no_data(axes)
        axes.set_ylabel(measure.unit)
        axes.set_title(measure.title, fontsize="medium", loc="left")
        if found:
            axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    figure.suptitle(f"Every user side by side: {', '.join(users)}")
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


# -- alert states as a timeline -------------------------------------------------------------


@dataclass(frozen=True)
class AlertSpan:
    state: str  # pending or firing
    start: float
    end: float


@dataclass(frozen=True)
class AlertRow:
    """One alert of one user (per variant, or pod, where the alert is per series), and when it
    was pending or firing within the window; a rule that never was has a row without spans."""

    alert: str
    user: str
    where: str
    spans: tuple[AlertSpan, ...] = field(default=())

    @property
    def label(self) -> str:
        where = f" {self.where}" if self.where else ""
        return f"{self.alert} [{self.user}{where}]"


def _where(labels: dict[str, str]) -> str:
    for name in (VARIANT_LABEL, "pod", "service"):
        if labels.get(name):
            return labels[name]
    return ""


def _spans(series: Series, step: float, end: float) -> list[AlertSpan]:
    """The series' points joined into spans: a gap longer than a step and a half ends one."""
    state = series.labels.get(ALERT_STATE_LABEL, "")
    spans: list[AlertSpan] = []
    times = [t for t, _v in series.points]
    first = 0
    for i in range(1, len(times) + 1):
        if i == len(times) or times[i] - times[i - 1] > 1.5 * step:
            spans.append(AlertSpan(state, times[first], min(times[i - 1] + step, end)))
            first = i
    return spans


def _among(labels: dict[str, str], users: Sequence[str], scope: Scope) -> bool:
    """Whether an alert or a rule is of one of these users; the scope's own user must also be
    in the scope's namespace, when it names one (the others are in theirs)."""
    user = labels.get(USER_LABEL)
    return user in users and (user != scope.user or scope.owns(labels))


def alert_timeline(api: PrometheusAPI, users: Sequence[str], window: Window) -> list[AlertRow]:
    """Each alert rule of these users, with the spans Prometheus's ALERTS series shows it
    pending or firing over the window, ordered as the rules are."""
    rules = [
        (rule["labels"][USER_LABEL], rule["name"])
        for rule in api.alert_rules()
        if _among(rule.get("labels", {}), users, window.scope)
    ]
    found: dict[tuple[str, str, str], list[AlertSpan]] = {}
    promql = f"{ALERTS_SERIES}{{{_users_matcher(users)}}}"
    for series in api.query_range(promql, window.start, window.end, window.step):
        labels = series.labels
        if _among(labels, users, window.scope):
            key = (labels[USER_LABEL], labels.get("alertname", ""), _where(labels))
            found.setdefault(key, []).extend(_spans(series, window.step, window.end))
    rank = {rule: i for i, rule in enumerate(dict.fromkeys(rules))}
    keys = set(found) | {(user, name, "") for user, name in rules if not _seen(found, user, name)}
    ordered = sorted(keys, key=lambda k: (k[0], rank.get((k[0], k[1]), len(rank)), k[1], k[2]))
    return [
        AlertRow(name, user, where, tuple(sorted(found.get((user, name, where), []), key=_start)))
        for user, name, where in ordered
    ]


def _seen(found: dict[tuple[str, str, str], list[AlertSpan]], user: str, name: str) -> bool:
    return any(key[:2] == (user, name) for key in found)


def _start(span: AlertSpan) -> float:
    return span.start


def _day_number(at: float) -> float:
    """matplotlib's number for the local wall-clock time of a Unix time."""
    from matplotlib.dates import date2num

    return float(date2num(_local(at)))  # type: ignore[no-untyped-call]


def timeline_figure(rows: Sequence[AlertRow], window: Window) -> Figure:
    """One row per alert, a bar where it was pending (amber) or firing (red)."""
    figure = new_figure(10, 0.42 * max(len(rows), 1) + 1.6)
    from matplotlib.patches import Patch

    axes = figure.add_subplot()
    for index, row in enumerate(reversed(rows)):
        for state in STATE_COLOURS:
            bars = [
                (_day_number(s.start), (s.end - s.start) / 86400)
                for s in row.spans
                if s.state == state
            ]
            axes.broken_barh(bars, (index - 0.35, 0.7), color=STATE_COLOURS[state])
    axes.set_yticks(range(len(rows)), [row.label for row in reversed(rows)], fontsize="small")
    axes.set_ylim(-0.6, max(len(rows), 1) - 0.4)
    axes.set_xlim(_day_number(window.start), _day_number(window.end))
    axes.xaxis_date()
    axes.grid(axis="x", alpha=0.3)
    if not rows:
        axes.text(0.5, 0.5, "no alert rules for these users", ha="center", va="center")
    handles = [Patch(color=colour, label=state) for state, colour in STATE_COLOURS.items()]
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    _finish(figure, axes, "Alert states", "", False)
    return figure


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def timeline_table(rows: Sequence[AlertRow], window: Window) -> Table:
    """The timeline's spans in words: one line per alert that was pending or firing."""
    lines = []
    for row in rows:
        if row.spans:
            shown = ", ".join(
                f"{s.state} {_clock(s.start)}–"
                + ("now" if s.end >= window.end - window.step else _clock(s.end))
                for s in row.spans
            )
            lines.append((row.label, shown))
    return Table(("alert", "pending / firing"), tuple(lines) or (("none", "-"),))


def _number(text: object) -> str:
    try:
        return f"{float(str(text)):.4g}"
    except ValueError:
        return str(text)


def active_alerts(api: PrometheusAPI, users: Sequence[str], scope: Scope) -> Table:
    """The alerts Prometheus has pending or firing now (its /api/v1/alerts), for these users."""
    rows = []
    for alert in api.alerts():
        labels = alert.get("labels", {})
        if not _among(labels, users, scope):
            continue
        since = time.strftime(SHOWN_TIME, time.localtime(_unix_time(alert.get("activeAt", ""))))
        row = (labels.get("alertname", ""), labels[USER_LABEL], _where(labels), alert["state"])
        rows.append((*row, since, _number(alert.get("value", ""))))
    rows.sort()
    return Table(("alert", "user", "where", "state", "active since", "value"), tuple(rows))


# -- drift ----------------------------------------------------------------------------------


def drift_threshold(api: PrometheusAPI, scope: Scope) -> float | None:
    """The drift alert's threshold for this user, as Prometheus loaded the rule (the chart's
    rules.alerts value), or None when no rule of the user judges drift."""
    for rule in api.alert_rules():
        labels = rule.get("labels", {})
        if scope.owns(labels) and labels.get(MEASURE_LABEL) == Measure.DRIFT:
            try:
                return float(rule.get("annotations", {}).get(THRESHOLD_ANNOTATION, ""))
            except ValueError:
                return None
    return None


def _natural(text: str) -> tuple[str, int]:
    number = re.search(r"\d+$", text)
    return (text[: number.start()], int(number[0])) if number else (text, -1)


def feature_drift(api: PrometheusAPI, scope: Scope) -> dict[str, dict[str, float]]:
    """Each feature's drift score now, per variant: {feature: {variant: PSI}}."""
    promql = (
        f"max by ({VARIANT_LABEL}, {FEATURE_LABEL}) ({FEATURE_DRIFT_SCORE}{{{scope.matchers()}}})"
    )
    scores: dict[str, dict[str, float]] = {}
    for sample in api.query(promql):
        feature = sample.labels.get(FEATURE_LABEL, "")
        scores.setdefault(feature, {})[sample.labels.get(VARIANT_LABEL, "")] = sample.value
    return {feature: scores[feature] for feature in sorted(scores, key=_natural)}


def drift_table(scores: dict[str, dict[str, float]], threshold: float | None) -> Table:
    """A row per feature, a column per variant; a score above the threshold says so."""
    variants = in_variant_order(v for per in scores.values() for v in per)

    def cell(score: float | None) -> str:
        if score is None:
            return "-"
        over = threshold is not None and score > threshold
        return f"{score:.3f}" + (" over" if over else "")

    rows = tuple(
        (feature, *(cell(per.get(variant)) for variant in variants))
        for feature, per in scores.items()
    )
    return Table(("feature", *variants), rows, (False, *(True for _ in variants)))


def features_over(scores: dict[str, dict[str, float]], threshold: float | None) -> list[str]:
    """The features whose drift is above the threshold for some variant."""
    if threshold is None:
        return []
    return [feature for feature, per in scores.items() if max(per.values()) > threshold]


def drift_figure(api: PrometheusAPI, window: Window, threshold: float | None) -> Figure:
    """Each feature's drift score over the window, one plot per variant, with the drift alert's
    threshold drawn across."""
    by = f"{VARIANT_LABEL}, {FEATURE_LABEL}"
    promql = f"max by ({by}) ({FEATURE_DRIFT_SCORE}{{{window.scope.matchers()}}})"
    found = api.query_range(promql, window.start, window.end, window.step)
    variants = in_variant_order(s.labels.get(VARIANT_LABEL, "") for s in found) or ["-"]
    figure = new_figure(10, 2.8 * len(variants) + 0.6)
    grid = figure.subplots(len(variants), 1, sharex=True, squeeze=False)
    for axes, variant in zip(grid[:, 0], variants, strict=True):
        mine = [s for s in found if s.labels.get(VARIANT_LABEL, "") == variant]
        mine.sort(key=lambda s: _natural(s.labels.get(FEATURE_LABEL, "")))
        for series in mine:
            values = [v for _t, v in series.points]
            axes.plot(_times(series), values, label=series.labels.get(FEATURE_LABEL, ""))
        if threshold is not None:
            axes.axhline(threshold, color="red", linestyle="--", label=f"threshold {threshold:g}")
        if not mine:
            _no_data(axes)
        axes.set_title(f"Input drift per feature: {variant}", fontsize="medium", loc="left")
        axes.set_ylabel("PSI")
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", ncol=2)
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


def drift_blocks(api: PrometheusAPI, scope: Scope) -> list[Block]:
    """The drift now: the worst features per variant, and every feature against the threshold."""
    scores = feature_drift(api, scope)
    if not scores:
        return [
            Text(
                "No drift scores in Prometheus yet (the exporter scores drift once it has inputs)."
            )
        ]
    variants: dict[str, list[tuple[float, str]]] = {}
    for feature, per in scores.items():
        for variant, score in per.items():
            variants.setdefault(variant, []).append((score, feature))
    rows = []
    for variant in in_variant_order(variants):
        ranked = sorted(variants[variant], reverse=True)
        top = ", ".join(f"{feature} {score:.3f}" for score, feature in ranked[:3])
        rows.append((variant, f"{ranked[0][0]:.3f}", top))
    threshold = drift_threshold(api, scope)
    over = features_over(scores, threshold)
    verdict = (
        "no drift alert rule for this user"
        if threshold is None
        else f"the drift alert's threshold is {threshold:g}; over it: {', '.join(over) or 'none'}"
    )
    return [
        Table(("variant", "overall (max PSI)", "top features"), tuple(rows), (False, True)),
        Text("PSI below 0.1: no shift; 0.1 to 0.25: moderate; above 0.25: significant."),
        Text(f"Every feature ({verdict}):"),
        drift_table(scores, threshold),
    ]


# -- the page -------------------------------------------------------------------------------


def report_parts(all_users: bool) -> int:
    """How many times write_report calls on_part: (with all_users) the users' comparison, the
    alert timeline, the drift over time, then each of the dashboard's panels."""
    return len(dashboard_panels()) + 2 + int(all_users)


def _users_blocks(
    api: PrometheusAPI, users: Sequence[str], window: Window, out: Path
) -> list[Block]:
    users_figure(api, users, window).savefig(out / "users.png")
    return [
        Heading(2, "Every user side by side"),
        Text(f"Users with model series in this range: {', '.join(users)}."),
        users_table(api, users, window),
        Image("Every user side by side", "users.png"),
    ]


def _alert_blocks(
    api: PrometheusAPI, users: Sequence[str], window: Window, out: Path
) -> list[Block]:
    rows = alert_timeline(api, users, window)
    timeline_figure(rows, window).savefig(out / "alerts-timeline.png")
    return [
        Heading(3, "Alert timeline"),
        Image("Alert states over the range", "alerts-timeline.png"),
        timeline_table(rows, window),
        Heading(3, "Pending and firing now"),
        active_alerts(api, users, window.scope),
    ]


def write_report(
    api: PrometheusAPI,
    scope: Scope,
    since_seconds: float,
    out: Path,
    rate_window: str,
    on_part: Callable[[str], None] | None = None,
    all_users: bool = False,
) -> Path:
    """report.md and report.html (self-contained) with their PNGs in `out`; returns report.md."""
    new_figure(1, 1)  # refuse at once, not after the first queries, without matplotlib
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OpsError(f"cannot write to {out}: {exc.strerror}") from exc
    window = Window.ending_now(scope, since_seconds, rate_window)
    done = on_part or (lambda _name: None)
    # What holds now is read first, at the end of the range, before the slower plots.
    now: list[Block] = [
        Heading(2, "Quality now"),
        Code(tuple(format_quality(read_quality(api, scope)))),
        Heading(2, "Alerts now"),
        Code(tuple(format_conditions(alert_conditions(api, scope)))),
    ]
    drift_now = drift_blocks(api, scope)
    users = known_users(api, window) if all_users else [scope.user]
    if scope.user not in users:
        users = sorted([*users, scope.user])
    compared = _users_blocks(api, users, window, out) if all_users else []
    if all_users:
        done("every user")
    alerts = _alert_blocks(api, users, window, out)
    done("alert timeline")
    drift_figure(api, window, drift_threshold(api, scope)).savefig(out / "drift-over-time.png")
    done("drift over time")
    panels: list[Block] = []
    for panel in dashboard_panels():
        panels += _panel_blocks(api, panel, window, out)
        done(panel.title)
    user = scope.user + (f" in {scope.namespace}" if scope.namespace else "")
    title = f"Model report: {user}"
    blocks: list[Block] = [
        Heading(1, title),
        Text(
            f"From {window.describe()}, Prometheus {api.url}; "
            f"the panels of the dashboard {DASHBOARD}."
        ),
        *compared,
        *now,
        *alerts,
        Heading(2, "Drift"),
        *drift_now,
        Heading(3, "Drift over time"),
        Image("Drift per feature over the range", "drift-over-time.png"),
        Heading(2, "Dashboard panels"),
        *panels,
    ]
    (out / "report.html").write_text(to_html(blocks, title, out))
    path = out / "report.md"
    path.write_text(to_markdown(blocks))
    return path
