"""What each user costs the shared stack: 1, 5, 10 and 20 users attached to one local stack (the
platform's release, then one attach release per user), each sent a steady low rate of
predictions with ground truth. At each size, after the series have settled, it records
Prometheus's active series, samples scraped and appended per second, the rule groups' evaluation
time, and the resident memory of Prometheus, Alertmanager and each exporter and router; then the
cost per user (a least-squares slope), how straight the line is (R²), and the series per user the
metric contract predicts (series_per_user below, the README's formula). Results in
bench/results-tenants.md.

    .venv/bin/python bench/bench_tenants.py [--sizes 1,5,10,20] [--rate 1] [--settle 75]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests
from prometheus_client.parser import text_string_to_metric_families

from local_stack.stack import LocalStack, ReleaseSpec, StackOptions, attached
from modelmon.contract import (
    EXPORTER_METRICS,
    IDENTITY_LABELS,
    LATENCY_BUCKETS,
    ROUTER_METRICS,
    Variant,
)
from modelmon.ops.rows import Rows
from modelmon.ops.users import lab_namespace

RESULTS = Path(__file__).with_name("results-tenants.md")
PLATFORM = "monitoring"
SCRAPE_INTERVAL = 2.0  # values/local.yaml's
FEATURES = 10  # the shipped models' inputs, x1..x10
# What prometheus_client's collectors add, outside the contract: an exporter has the process
# (6), platform (python_info, 1) and GC (3 generations × 3) collectors, the router the process
# collector only.
EXPORTER_DEFAULTS = 16
ROUTER_DEFAULTS = 6
# Per target, Prometheus's own: up, scrape_duration_seconds, scrape_samples_scraped,
# scrape_samples_post_metric_relabeling, scrape_series_added.
PER_TARGET = 5
# Recording rules (rules/recording.yaml): each a series per variant.
RECORDED_PER_VARIANT = 7
# Label values a steady run has: errors and rejections pre-set for two reasons each; the
# router's requests for two routes (predict, feedback) with code 200, and failovers both ways.
REASONS = 2
ROUTES = 2


@dataclass
class Reading:
    users: int
    head_series: float
    scraped_per_second: float
    appended_per_second: float
    rule_seconds: float
    prometheus_mib: float
    alertmanager_mib: float
    exporter_mib: float
    router_mib: float


def series_of(metric_type: str, label_values: int, buckets: int = len(LATENCY_BUCKETS)) -> int:
    """Samples one family exposes with `label_values` label sets (prometheus_client: counters
    and histograms also expose `_created`)."""
    per_set = {"counter": 2, "gauge": 1, "info": 1, "histogram": buckets + 3 + 1}[metric_type]
    return per_set * label_values


def series_per_exporter() -> int:
    total = EXPORTER_DEFAULTS
    for metric in EXPORTER_METRICS:
        extra = set(metric.labels) - set(IDENTITY_LABELS)
        values = REASONS if "reason" in extra else FEATURES if "feature" in extra else 1
        total += series_of(metric.type, values)
    return total


def series_per_router() -> int:
    total = ROUTER_DEFAULTS
    variants = len(Variant)
    for metric in ROUTER_METRICS:
        labels = set(metric.labels)
        if "route" in labels:  # one code (200) in a steady run
            values = variants * ROUTES
        elif "from_variant" in labels:
            values = variants * (variants - 1)
        else:
            values = 1
        total += series_of(metric.type, values)
    return total


def series_per_user() -> int:
    """The contract's prediction: two exporters and a router, their targets' scrape series,
    and the recorded series of both variants."""
    targets = len(Variant) + 1
    return (
        len(Variant) * series_per_exporter()
        + series_per_router()
        + PER_TARGET * targets
        + RECORDED_PER_VARIANT * len(Variant)
    )


def attach(user: str) -> ReleaseSpec:
    # every series there is to have, soon: drift scores after 20 rows
    return attached(
        user, ReleaseSpec(PLATFORM, PLATFORM), set_values={"model-exporter.drift.minSamples": "20"}
    )


class Load:
    """`rate` predictions per second per user through each user's router, with ground truth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.urls: list[str] = []
        self.failed = 0
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        rows = Rows(seed=11)
        while not self._stop.is_set():
            started = time.monotonic()
            for url in list(self.urls):
                row, truth = rows.take()
                try:
                    answer = session.post(f"{url}/predict", json={"features": row}, timeout=10)
                    [prediction] = answer.json()["predictions"]
                    session.post(
                        f"{url}/feedback",
                        json={"prediction_id": prediction["prediction_id"], "actual": truth},
                        timeout=10,
                    ).raise_for_status()
                    self.sent += 1
                except (requests.RequestException, KeyError, ValueError):
                    self.failed += 1
            self._stop.wait(max(0.0, 1 / self.rate - (time.monotonic() - started)))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


SUMMED = (
    "prometheus_rule_group_last_duration_seconds",
    "prometheus_tsdb_head_samples_appended_total",
)


def prometheus_metrics(stack: LocalStack) -> dict[str, float]:
    text = requests.get(f"{stack.prometheus.url}/metrics", timeout=10).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in SUMMED:  # over its label sets: rule groups, sample types
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
            elif not sample.labels:
                values[sample.name] = sample.value
    return values


def mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def read(stack: LocalStack, users: int, settle: float) -> Reading:
    time.sleep(settle)
    before = prometheus_metrics(stack)
    time.sleep(20)
    after = prometheus_metrics(stack)
    appended = "prometheus_tsdb_head_samples_appended_total"
    scraped = sum(s.value for s in stack.prometheus.query("scrape_samples_scraped"))
    by_kind: dict[str, list[float]] = {"exporter": [], "router": []}
    for pod in stack.pods:
        if pod.process is None or not pod.namespace.startswith("kubeflow-"):
            continue
        kind = "router" if pod.container.command[0] == "modelmon-router" else "exporter"
        by_kind[kind].append(mib(pod.process.pid))
    return Reading(
        users=users,
        head_series=after["prometheus_tsdb_head_series"],
        scraped_per_second=scraped / SCRAPE_INTERVAL,
        appended_per_second=(after[appended] - before[appended]) / 20,
        rule_seconds=after["prometheus_rule_group_last_duration_seconds"],
        prometheus_mib=mib(stack.servers["prometheus"].pid),
        alertmanager_mib=mib(stack.servers["alertmanager"].pid),
        exporter_mib=statistics.mean(by_kind["exporter"]),
        router_mib=statistics.mean(by_kind["router"]),
    )


def slope(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Least squares y = a + b·x: (a, b, R²)."""
    xs, ys = zip(*points, strict=True)
    fit = statistics.linear_regression(xs, ys)
    mean = statistics.mean(ys)
    total = sum((y - mean) ** 2 for y in ys)
    residual = sum((y - fit.intercept - fit.slope * x) ** 2 for x, y in points)
    return fit.intercept, fit.slope, 1 - residual / total if total else 1.0


COLUMNS = (
    ("head_series", "active series", "{:,.0f}"),
    ("scraped_per_second", "samples scraped/s", "{:,.0f}"),
    ("appended_per_second", "samples appended/s", "{:,.0f}"),
    ("rule_seconds", "rule evaluation (s, all groups)", "{:.4f}"),
    ("prometheus_mib", "Prometheus RSS (MiB)", "{:.0f}"),
    ("alertmanager_mib", "Alertmanager RSS (MiB)", "{:.0f}"),
    ("exporter_mib", "RSS per exporter (MiB)", "{:.0f}"),
    ("router_mib", "RSS per router (MiB)", "{:.0f}"),
)


def report(readings: list[Reading], args: argparse.Namespace, load: Load) -> str:
    lines = [
        "# What each user costs the shared stack",
        "",
        f"`bench/bench_tenants.py`, {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
        f"{psutil.cpu_count()} cores, Python {platform.python_version()}. One local stack: the "
        f"platform's release, then 1 to {readings[-1].users} attach releases (two exporters and a "
        f"router each), {args.rate:g} prediction/s per user with ground truth, scraped every "
        f"{SCRAPE_INTERVAL:g} s, rules every 2 s; each size read after {args.settle:g} s. "
        f"{load.sent:,} predictions with feedback sent, {load.failed} failed.",
        "",
        "| users | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
        "|---:|" + "---:|" * len(COLUMNS),
    ]
    for r in readings:
        cells = [fmt.format(getattr(r, key)) for key, _, fmt in COLUMNS]
        lines.append(f"| {r.users} | " + " | ".join(cells) + " |")
    lines += ["", "Per user (least-squares slope over the sizes) and how straight the line is:", ""]
    lines += ["| measure | base (0 users) | per user | R² |", "|---|---:|---:|---:|"]
    for key, title, fmt in COLUMNS:
        if key in ("exporter_mib", "router_mib"):
            continue
        base, per_user, r2 = slope([(r.users, getattr(r, key)) for r in readings])
        lines.append(f"| {title} | {fmt.format(base)} | {fmt.format(per_user)} | {r2:.3f} |")
    _, measured, _ = slope([(r.users, r.head_series) for r in readings])
    predicted = series_per_user()
    lines += [
        "",
        f"Series per user: measured {measured:.1f}, the contract predicts {predicted} "
        f"(2 × {series_per_exporter()} per exporter + {series_per_router()} per router + "
        f"{PER_TARGET} × 3 per target + {RECORDED_PER_VARIANT} × 2 recorded; README, *What each "
        "user costs*). Exporter and router memory is per process, not per user: a user runs "
        "two exporters and a router.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,5,10,20")
    parser.add_argument("--rate", type=float, default=1.0, help="predictions/s per user")
    parser.add_argument("--settle", type=float, default=75.0, help="seconds before each reading")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    readings = []
    options = StackOptions(release=PLATFORM, namespace=PLATFORM)
    with LocalStack(options) as stack, Load(args.rate) as load:
        installed = 0
        for size in sizes:
            while installed < size:
                installed += 1
                user = f"tenant{installed:02d}"
                stack.install(attach(user))
                load.urls.append(
                    stack.service_url(
                        f"{user}-model-exporter-router", namespace=lab_namespace(user)
                    )
                )
                print(f"installed {user}", file=sys.stderr, flush=True)
            readings.append(read(stack, size, args.settle))
            print(readings[-1], file=sys.stderr, flush=True)
        text = report(readings, args, load)
    RESULTS.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
