"""Alert states as a timeline (Prometheus's ALERTS series) and what is active now."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from modelmon.contract import (
    USER_LABEL,
    VARIANT_LABEL,
)
from modelmon.ops.prometheus import PrometheusAPI, Scope, Series, _unix_time

if TYPE_CHECKING:
    from matplotlib.figure import Figure
from modelmon.ops.report.figures import SHOWN_TIME, Window, finish, local_time, new_figure
from modelmon.ops.report.page import Block, Heading, Image, Table
from modelmon.ops.report.users import users_matcher

ALERTS_SERIES = "ALERTS"
ALERT_STATE_LABEL = "alertstate"
STATE_COLOURS = {"pending": "#f2a93b", "firing": "#d62728"}


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


def alert_spans(series: Series, step: float, end: float) -> list[AlertSpan]:
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
    promql = f"{ALERTS_SERIES}{{{users_matcher(users)}}}"
    for series in api.query_range(promql, window.start, window.end, window.step):
        labels = series.labels
        if _among(labels, users, window.scope):
            key = (labels[USER_LABEL], labels.get("alertname", ""), _where(labels))
            found.setdefault(key, []).extend(alert_spans(series, window.step, window.end))
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

    return float(date2num(local_time(at)))  # type: ignore[no-untyped-call]


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
    finish(figure, axes, "Alert states", "", False)
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


def alert_blocks(
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
