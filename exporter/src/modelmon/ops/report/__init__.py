"""report: the panels of the shipped Grafana dashboard for one user over a time range (plots for
time series, tables for the rest), the alert states as a timeline, the drift per feature and over
time, and, on request, every user side by side; one page written as Markdown and as HTML.

The panels and their queries are read from the dashboard JSON itself (package data, the same file
the chart ships), so a panel added to the dashboard appears in the report. The other views are
functions of their own, so the lab's notebooks (notebooks/) show the same figures and tables:
each returns a matplotlib Figure or a Table, which a notebook displays as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from modelmon.ops.errors import OpsError
from modelmon.ops.prometheus import PrometheusAPI, Scope
from modelmon.ops.readings import alert_conditions, format_conditions, format_quality, read_quality
from modelmon.ops.report.alerts import (
    AlertRow,
    AlertSpan,
    active_alerts,
    alert_blocks,
    alert_spans,
    alert_timeline,
    timeline_figure,
    timeline_table,
)
from modelmon.ops.report.drift import (
    drift_blocks,
    drift_figure,
    drift_table,
    drift_threshold,
    feature_drift,
    features_over,
)
from modelmon.ops.report.figures import Window, new_figure
from modelmon.ops.report.page import Block, Code, Heading, Image, Table, Text, to_html, to_markdown
from modelmon.ops.report.panels import (
    DASHBOARD,
    Panel,
    dashboard_panels,
    fill,
    legend,
    load_dashboard,
    panel_blocks,
    panel_figure,
    panel_named,
    panel_table,
)
from modelmon.ops.report.users import known_users, users_blocks, users_figure, users_table

# What the lab's notebooks and the tests use, besides write_report.
__all__ = [
    "AlertRow",
    "AlertSpan",
    "Block",
    "Code",
    "Heading",
    "Image",
    "Panel",
    "Table",
    "Text",
    "Window",
    "active_alerts",
    "alert_spans",
    "alert_timeline",
    "dashboard_panels",
    "drift_figure",
    "drift_table",
    "drift_threshold",
    "feature_drift",
    "features_over",
    "fill",
    "known_users",
    "legend",
    "load_dashboard",
    "panel_figure",
    "panel_named",
    "panel_table",
    "report_parts",
    "timeline_figure",
    "timeline_table",
    "to_html",
    "to_markdown",
    "users_figure",
    "users_table",
    "write_report",
]


def report_parts(all_users: bool) -> int:
    """How many times write_report calls on_part: (with all_users) the users' comparison, the
    alert timeline, the drift over time, then each of the dashboard's panels."""
    return len(dashboard_panels()) + 2 + int(all_users)


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
    compared = users_blocks(api, users, window, out) if all_users else []
    if all_users:
        done("every user")
    alerts = alert_blocks(api, users, window, out)
    done("alert timeline")
    drift_figure(api, window, drift_threshold(api, scope)).savefig(out / "drift-over-time.png")
    done("drift over time")
    panels: list[Block] = []
    for panel in dashboard_panels():
        panels += panel_blocks(api, panel, window, out)
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
