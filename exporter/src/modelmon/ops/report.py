"""report: PNG plots of one user's model over a time range, the alert states and a drift
summary, on one Markdown page."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from modelmon.ops.errors import OpsError
from modelmon.ops.prometheus import PrometheusAPI, Scope, Series
from modelmon.ops.readings import alert_conditions, format_conditions, format_quality, read_quality


@dataclass(frozen=True)
class Panel:
    file: str
    title: str
    unit: str
    queries: dict[str, str]  # legend prefix -> PromQL; a series' variant label is appended


def panels(scope: Scope, rate_window: str) -> list[Panel]:
    sel = scope.matchers()

    def latency(q: float) -> str:
        return (
            f"histogram_quantile({q}, sum by (variant, le) "
            f"(rate(model_prediction_latency_seconds_bucket{{{sel}}}[{rate_window}])))"
        )

    return [
        Panel("mae.png", "MAE by variant", "MAE", {"": f"max by (variant) (model:mae{{{sel}}})"}),
        Panel("r2.png", "R² by variant", "R²", {"": f"max by (variant) (model:r2{{{sel}}})"}),
        Panel(
            "latency.png",
            "Prediction latency by variant",
            "seconds",
            {f"p{round(q * 100)} ": latency(q) for q in (0.5, 0.95, 0.99)},
        ),
        Panel(
            "requests.png",
            "Predictions per second by variant",
            "requests/s",
            {"": f"sum by (variant) (rate(model_prediction_total{{{sel}}}[{rate_window}]))"},
        ),
        Panel(
            "split.png",
            "Traffic split at the router (share of predictions)",
            "share",
            {
                "": f'sum by (variant) (rate(router_requests_total{{{sel},route="predict"}}'
                f"[{rate_window}])) / ignoring (variant) group_left "
                f'sum(rate(router_requests_total{{{sel},route="predict"}}[{rate_window}]))'
            },
        ),
        Panel(
            "alerts.png",
            "Alerts (1 = pending, 2 = firing)",
            "state",
            {
                "": f'max by (alertname) (ALERTS{{{sel},alertstate="firing"}}) * 2 '
                f'or max by (alertname) (ALERTS{{{sel},alertstate="pending"}})'
            },
        ),
    ]


def _legend(prefix: str, series: Series) -> str:
    name = series.labels.get("variant") or series.labels.get("alertname") or "all"
    return f"{prefix}{name}"


def _plot(pyplot: Any, panel: Panel, data: list[tuple[str, Series]], path: Path) -> None:
    figure, axes = pyplot.subplots(figsize=(9, 3.2), dpi=100)
    try:
        if not data:
            axes.text(0.5, 0.5, "no data in this range", ha="center", va="center")
        for label, series in data:
            times = [t for t, _v in series.points]
            values = [v for _t, v in series.points]
            axes.plot([datetime.fromtimestamp(t) for t in times], values, label=label)
        axes.set_title(panel.title)
        axes.set_ylabel(panel.unit)
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


def _drift_lines(api: PrometheusAPI, scope: Scope) -> list[str]:
    samples = api.query(f"model_feature_drift_score{{{scope.matchers()}}}")
    if not samples:
        return ["No drift scores in Prometheus yet (the exporter scores drift once it has inputs)."]
    by_variant: dict[str, list[tuple[float, str]]] = {}
    for sample in samples:
        by_variant.setdefault(sample.labels.get("variant", ""), []).append(
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
    pyplot = _matplotlib()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OpsError(f"cannot write to {out}: {exc.strerror}") from exc
    end = time.time()
    start = end - since_seconds
    step = max(1.0, since_seconds / 300)
    images = []
    for panel in panels(scope, rate_window):
        data = [
            (_legend(prefix, series), series)
            for prefix, promql in panel.queries.items()
            for series in api.query_range(promql, start, end, step)
        ]
        _plot(pyplot, panel, data, out / panel.file)
        images.append(f"### {panel.title}\n\n![{panel.title}]({panel.file})\n")
        if on_panel is not None:
            on_panel(panel.file)
    user = scope.user + (f" in {scope.namespace}" if scope.namespace else "")
    page = [
        f"# Model report: {user}",
        "",
        f"From {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(start))} to "
        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(end))} "
        f"({since_seconds:g} s), Prometheus {api.url}.",
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
        *_drift_lines(api, scope),
        "",
        "## Over time",
        "",
        *images,
    ]
    path = out / "report.md"
    path.write_text("\n".join(page))
    return path
