"""Exporter benchmark: the exporter beside its serving peers, on the same estimators, in one run.

Single-row predictions from wrk (one thread, closed loop) at 1, 16, 64 and 256 connections, the
server pinned to one core and wrk to the other, for both shipped models:
  modelmon (micro-batching on, as shipped), modelmon with batching off, the lab's server,
  MLServer's scikit-learn runtime with adaptive batching (the exporter's limits) and without;
at 64 connections also modelmon with metrics off, the HTTP ceiling (a constant and a validated
constant answer on the same stack) and the exporter serving a model that costs nothing (its own
fixed cost); and the model floor, the bare estimator's rows/s at batch 1 and at the largest batch
the exporter formed. Servers take turns round by round, so drift in the machine's speed hits all
alike; the median round counts. Then the RSS of modelmon over a run at 64 connections, and
/metrics scrape times. Writes bench/results-exporter.md. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests
from metrics_cpu import metrics_cpu
from prometheus_client.parser import text_string_to_metric_families

import modelmon
import peers
from local_stack.models import ensure_models
from local_stack.pods import free_port
from local_stack.processes import Supervisor
from modelmon.config import BATCHING_MAX_ROWS, BATCHING_MAX_WAIT_SECONDS
from modelmon.contract import BATCH_ROWS
from peers import Server
from wrk_load import (
    BIN_DIR,
    SERVER_CORE,
    LoadResult,
    pinned,
    require_wrk,
    run_wrk,
    start_server,
    wrk_script,
)

BENCH_DIR = Path(__file__).resolve().parent
MODELS = {"RandomForest": "model-v1.joblib", "HistGradientBoosting": "model-v2.joblib"}
MODELMON = "modelmon"
BATCHING_OFF = "modelmon, batching off"
METRICS_OFF = "modelmon, metrics off"
METRICS_RUNS = 8  # a 5 % effect is inside the noise of 3 rounds, and of a single process
LAB = "lab (FastAPI + instrumentator)"
MLSERVER_ADAPTIVE = "MLServer, adaptive batching"
MLSERVER_PLAIN = "MLServer, no batching"
CONSTANT = "constant answer (HTTP ceiling)"
VALIDATED = "pydantic-validated constant answer"
TRIVIAL = "modelmon, a model that costs nothing"
REFERENCE_CONNECTIONS = 64
# Batching limits tried on the forest, where batching matters most: (max rows, max wait seconds).
SWEEP = ((64, 0.0), (64, 0.002), (256, 0.0), (256, 0.002), (256, 0.005))
SWEEP_CONNECTIONS = [16, 64, 256]
SWEEP_MODEL = "RandomForest"


def sweep_name(rows: int, wait: float) -> str:
    return f"maxRows {rows}, maxWaitSeconds {wait:g}"


@dataclass(frozen=True)
class Cell:
    model: str  # "" for the ceiling rows
    server: str
    connections: int


def line_up(
    models: Path, workdir: Path, connections: list[int]
) -> list[tuple[str, Server, list[int]]]:
    """(model, server, connection counts) for every server of the run."""
    lineup: list[tuple[str, Server, list[int]]] = []
    for label, filename in MODELS.items():
        model = models / filename
        lineup += [
            (label, peers.exporter(MODELMON, model), connections),
            (label, peers.exporter(BATCHING_OFF, model, "--batching", "false"), connections),
            (label, peers.lab(model), connections),
            (label, peers.mlserver(MLSERVER_ADAPTIVE, model, workdir, adaptive=True), connections),
            (label, peers.mlserver(MLSERVER_PLAIN, model, workdir, adaptive=False), connections),
        ]
    for rows, wait in SWEEP:
        flags = ["--batching-max-rows", str(rows), "--batching-max-wait-seconds", str(wait)]
        lineup.append(
            (
                SWEEP_MODEL,
                peers.exporter(sweep_name(rows, wait), models / MODELS[SWEEP_MODEL], *flags),
                SWEEP_CONNECTIONS,
            )
        )
    trivial = peers.trivial_model(
        models / MODELS["HistGradientBoosting"], workdir / "trivial.joblib"
    )
    lineup += [
        ("", peers.ceiling(CONSTANT, "/constant"), [REFERENCE_CONNECTIONS]),
        ("", peers.ceiling(VALIDATED, "/validated"), [REFERENCE_CONNECTIONS]),
        ("", peers.exporter(TRIVIAL, trivial), [REFERENCE_CONNECTIONS]),
    ]
    return lineup


def metrics_cost_runs(
    supervisor: Supervisor, models: Path, workdir: Path, seconds: int, runs: int
) -> dict[str, list[tuple[float, float, float]]]:
    """Requests/s of metrics on, metrics off, and metrics on again (the noise floor: the same
    server twice), per model. Each run starts the three afresh and measures them in a rotated
    order, so neither a process's luck (its memory layout) nor its turn favours one side."""
    script = wrk_script(workdir, name="metrics-cost")
    measured: dict[str, list[tuple[float, float, float]]] = {}
    for label, filename in MODELS.items():
        measured[label] = []
        trio = (
            peers.exporter(MODELMON, models / filename),
            peers.exporter(METRICS_OFF, models / filename, "--metrics-enabled", "false"),
            peers.exporter(MODELMON, models / filename),
        )
        for run in range(runs):
            urls = []
            for server in trio:
                port = free_port()
                start_server(supervisor, server.name, server.argv(port), port, server.ready_path)
                urls.append(f"http://127.0.0.1:{port}/predict")
            for url in urls:
                run_wrk(url, script, 1, REFERENCE_CONNECTIONS)  # warm-up
            shift = run % len(urls)
            rates = {
                url: run_wrk(url, script, seconds, REFERENCE_CONNECTIONS).requests_per_second
                for url in urls[shift:] + urls[:shift]
            }
            on, off, again = (rates[url] for url in urls)
            measured[label].append((on, off, again))
            print(
                f"  metrics on/off/on {label} {run + 1}/{runs}: {on:.0f} / {off:.0f} / {again:.0f}"
            )
            supervisor.stop_all()
    return measured


def largest_batch(url: str) -> int:
    """The smallest bucket bound that holds every model call the exporter made."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(text):
        if family.name == BATCH_ROWS.name:
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    buckets.append((float(sample.labels["le"]), sample.value))
    total = max(count for _, count in buckets)
    return int(min(bound for bound, count in buckets if count == total and bound != float("inf")))


def model_floor(model: Path, sizes: list[int]) -> dict[int, float]:
    output = subprocess.run(
        pinned(
            [sys.executable, str(BENCH_DIR / "model_floor.py"), str(model), *map(str, sizes)],
            SERVER_CORE,
        ),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {int(rows): value for rows, value in json.loads(output).items()}


def scrape_times_ms(url: str, count: int) -> list[float]:
    session = requests.Session()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        session.get(url, timeout=5).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return times


def rss_over_time(
    supervisor: Supervisor, server: Server, script: Path, seconds: int
) -> list[tuple[float, float]]:
    port = free_port()
    argv = [*server.argv(port), "--feedback-ttl-seconds", "60"]
    process = start_server(supervisor, "rss", argv, port, server.ready_path)
    load = subprocess.Popen(
        pinned(
            [
                "wrk",
                "-t1",
                f"-c{REFERENCE_CONNECTIONS}",
                f"-d{seconds}s",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}/predict",
            ],
            "1",
        ),
        stdout=subprocess.DEVNULL,
    )
    samples = []
    started = time.monotonic()
    watched = psutil.Process(process.pid)
    while load.poll() is None:
        elapsed = time.monotonic() - started
        samples.append((elapsed, watched.memory_info().rss / 2**20))
        print(
            f"\r  RSS run: {elapsed:5.0f}/{seconds} s, {samples[-1][1]:6.1f} MiB",
            end="",
            flush=True,
        )
        time.sleep(5)
    print(flush=True)
    process.stop()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per measurement")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--rss-seconds", type=int, default=300)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results-exporter.md")
    args = parser.parse_args()
    needed = {1, REFERENCE_CONNECTIONS} - set(args.connections)
    if needed:
        parser.error(
            f"--connections must include {' and '.join(map(str, sorted(needed)))}: the report's "
            f"ratios compare at 1 and {REFERENCE_CONNECTIONS} connections"
        )

    require_wrk()
    if not peers.mlserver_installed():
        sys.exit(
            f"bench: error: MLServer is not installed in {peers.MLSERVER_VENV}: run `make bench`"
        )
    models = ensure_models(BIN_DIR / "modelmon-train", Path(modelmon.__file__).parent)
    workdir = Path(tempfile.mkdtemp(prefix="bench-exporter-"))
    supervisor = Supervisor(workdir / "logs")
    lineup = line_up(models, workdir, args.connections)
    results: dict[Cell, list[LoadResult]] = defaultdict(list)
    batches: dict[str, int] = {}
    scrape: list[float] = []
    measurements = args.rounds * sum(len(counts) for _, _, counts in lineup)
    done = 0
    try:
        for round_index in range(args.rounds):
            shift = round_index % len(lineup)
            for model, server, counts in lineup[shift:] + lineup[:shift]:
                port = free_port()
                process = start_server(
                    supervisor, server.name, server.argv(port), port, server.ready_path
                )
                url = f"http://127.0.0.1:{port}{server.path}"
                script = wrk_script(
                    workdir, body=server.body, name=f"body-{abs(hash(server.path))}"
                )
                run_wrk(url, script, 1, REFERENCE_CONNECTIONS)  # warm-up
                for connections in counts:
                    result = run_wrk(url, script, args.seconds, connections)
                    results[Cell(model, server.name, connections)].append(result)
                    done += 1
                    print(
                        f"  [{done}/{measurements}] round {round_index + 1} {model or '-':<20} "
                        f"{server.name:<36} c={connections:<3} "
                        f"{result.requests_per_second:8.1f} req/s  p99 {result.p99_ms:7.2f} ms  "
                        f"errors {result.errors}",
                        flush=True,
                    )
                if server.name == MODELMON:
                    base = f"http://127.0.0.1:{port}"
                    batches[model] = max(batches.get(model, 1), largest_batch(base))
                    scrape += scrape_times_ms(f"{base}/metrics", 100)
                process.stop()
                supervisor.processes.remove(process)
        floors = {
            label: model_floor(models / filename, sorted({1, batches.get(label, 1)}))
            for label, filename in MODELS.items()
        }
        pairs = metrics_cost_runs(supervisor, models, workdir, args.seconds, METRICS_RUNS)
        cpu = metrics_cpu(workdir / "trivial.joblib")
        reference = peers.exporter(MODELMON, models / MODELS["RandomForest"])
        rss_script = wrk_script(workdir, name="rss")
        rss = rss_over_time(supervisor, reference, rss_script, args.rss_seconds)
    finally:
        supervisor.stop_all()
    report = Report(results, floors, pairs, scrape, rss, cpu, args)
    args.out.write_text(report.render())
    print(f"wrote {args.out}")
    return 0


@dataclass(frozen=True)
class Report:
    results: dict[Cell, list[LoadResult]]
    floors: dict[str, dict[int, float]]
    pairs: dict[str, list[tuple[float, float, float]]]
    scrape: list[float]
    rss: list[tuple[float, float]]
    cpu: dict[str, float]  # µs of CPU per /predict in process, by metrics setting
    args: argparse.Namespace

    def median(self, model: str, server: str, connections: int, field: str) -> float:
        return statistics.median(
            getattr(r, field) for r in self.results[Cell(model, server, connections)]
        )

    def rps(self, model: str, server: str, connections: int = REFERENCE_CONNECTIONS) -> float:
        return self.median(model, server, connections, "requests_per_second")

    def render(self) -> str:
        args = self.args
        lines = [
            "# Exporter benchmark",
            "",
            f"Measured {time.strftime('%Y-%m-%d')} by `make bench` (bench/bench_exporter.py) on "
            f"{psutil.cpu_count()} cores: each server pinned to core {SERVER_CORE}, wrk (1 thread) "
            f"to the other; single-row requests, {args.seconds} s per measurement, "
            f"{args.rounds} rounds with the servers taking turns (median shown). Every server "
            "serves the same estimator: the exporter and the lab's server load the artifact, "
            "MLServer the estimator from it (joblib), with the same scikit-learn. MLServer's "
            "adaptive batching is set to the exporter's limits "
            f"(max_batch_size {BATCHING_MAX_ROWS}, max_batch_time "
            f"{float(BATCHING_MAX_WAIT_SECONDS) * 1000:g} ms); see bench/peers.py for each peer.",
            "",
        ]
        for model in MODELS:
            lines += self.model_table(model)
        lines += self.ratios()
        lines += self.sweep_table()
        lines += self.notes()
        return "\n".join(lines)

    def model_table(self, model: str) -> list[str]:
        counts = self.args.connections
        header = " | ".join(f"{c} conn req/s | p99 ms" for c in counts)
        lines = [
            f"## {model} ({MODELS[model]})",
            "",
            f"| server | {header} | errors |",
            "|---|" + "---:|---:|" * len(counts) + "---:|",
        ]
        for server in (MODELMON, BATCHING_OFF, LAB, MLSERVER_ADAPTIVE, MLSERVER_PLAIN):
            cells = " | ".join(
                f"{self.rps(model, server, c):,.0f} | {self.median(model, server, c, 'p99_ms'):.2f}"
                for c in counts
            )
            errors = sum(r.errors for c in counts for r in self.results[Cell(model, server, c)])
            lines.append(f"| {server} | {cells} | {errors} |")
        floor = self.floors[model]
        largest = max(floor)
        lines += [
            "",
            f"Model floor, the bare estimator on one thread: {floor[1]:,.0f} rows/s at batch 1, "
            f"{floor[largest]:,.0f} rows/s at batch {largest} (the largest the exporter formed).",
            "",
        ]
        return lines

    def ratios(self) -> list[str]:
        c = REFERENCE_CONNECTIONS
        rf = next(iter(MODELS))
        per_request_us = {name: 1e6 / self.rps("", name) for name in (CONSTANT, VALIDATED, TRIVIAL)}
        fixed = per_request_us[TRIVIAL] / per_request_us[VALIDATED]
        lab_ratio = self.rps(rf, MODELMON) / self.rps(rf, LAB)
        p99_gap = max(
            self.median(m, MODELMON, 1, "p99_ms") - self.median(m, BATCHING_OFF, 1, "p99_ms")
            for m in MODELS
        )

        def median_of(model: str, index: int) -> float:
            return statistics.median(run[index] for run in self.pairs[model])

        metrics_cost = max(1 - median_of(m, 0) / median_of(m, 1) for m in MODELS)
        noise = max(abs(1 - median_of(m, 0) / median_of(m, 2)) for m in MODELS)
        errors = sum(r.errors for cell, runs in self.results.items() for r in runs)
        warm = [m for t, m in self.rss if t >= 90]
        first, last = (warm[0], warm[-1]) if warm else (float("nan"), float("nan"))
        growth = last - first
        scrape = sorted(self.scrape)
        rows = [
            (
                f"exporter's own cost per request (a model that costs nothing, {c} conn) / the "
                "pydantic-validated constant endpoint's",
                f"{per_request_us[TRIVIAL]:.0f} µs / {per_request_us[VALIDATED]:.0f} µs "
                f"= {fixed:.2f}×",
                "≤ 1.2×",
                fixed <= 1.2,
            ),
            (
                f"HTTP ceiling: the constant endpoint's cost per request ({c} conn)",
                f"{per_request_us[CONSTANT]:.0f} µs",
                "(reference)",
                None,
            ),
        ]
        for model in MODELS:
            ratio = self.rps(model, MODELMON) / self.rps(model, MLSERVER_ADAPTIVE)
            rows.append(
                (
                    f"throughput vs MLServer with adaptive batching, {model}, {c} conn",
                    f"{ratio:.2f}×",
                    "≥ 1.0×",
                    ratio >= 1.0,
                )
            )
        rows += [
            (
                f"throughput vs the lab's server, {rf}, {c} conn",
                f"{lab_ratio:.1f}×",
                "≥ 10×",
                lab_ratio >= 10,
            ),
            (
                "p99 at 1 conn: batching on − batching off (worse of the two models)",
                f"{p99_gap:+.2f} ms",
                "≤ +1 ms",
                p99_gap <= 1.0,
            ),
            (
                f"metrics cost, 1 − on / off at {c} conn, medians of {METRICS_RUNS} runs of fresh "
                "processes (worse of the two models)",
                f"{metrics_cost * 100:.1f} %",
                "≤ 5 %",
                metrics_cost <= 0.05,
            ),
            (
                "noise floor of that measure: the same for two identical servers (metrics on), "
                "measured the same way",
                f"{noise * 100:.1f} %",
                "(reference)",
                None,
            ),
            (
                "the metrics' CPU per /predict, in process (a model that costs nothing, no "
                "batching): on − off; of which the HTTP metrics",
                f"{self.cpu['on'] - self.cpu['off']:.1f} µs of {self.cpu['off']:.1f}; "
                f"{self.cpu['on'] - self.cpu['on, HTTP metrics off']:.1f} µs",
                "(reference)",
                None,
            ),
            (
                "errors (non-2xx and socket) over every measurement, up to 256 conn",
                f"{errors}",
                "0",
                errors == 0,
            ),
            (
                f"RSS of modelmon ({rf}, {c} conn): after 90 s, first → last sample of "
                f"{self.args.rss_seconds} s",
                f"{first:.1f} → {last:.1f} MiB ({growth:+.1f})",
                "flat",
                abs(growth) <= 16,
            ),
            (
                f"`/metrics` scrape under no load, p50 / p99 of {len(scrape)}",
                f"{statistics.median(scrape):.2f} / {scrape[int(0.99 * (len(scrape) - 1))]:.2f} ms",
                "≤ 10 ms",
                scrape[int(0.99 * (len(scrape) - 1))] <= 10,
            ),
        ]
        lines = [
            "## Ratios, same run",
            "",
            "| measure | value | target | met |",
            "|---|---:|---|---|",
        ]
        for measure, value, target, met in rows:
            mark = "" if met is None else ("yes" if met else "**no**")
            lines.append(f"| {measure} | {value} | {target} | {mark} |")
        return [*lines, ""]

    def sweep_table(self) -> list[str]:
        header = " | ".join(f"{c} conn req/s | p99 ms" for c in SWEEP_CONNECTIONS)
        lines = [
            f"## Batching limits ({SWEEP_MODEL})",
            "",
            "The defaults (`batching.maxRows`, `batching.maxWaitSeconds` in the chart; "
            "`--batching-max-rows`, `--batching-max-wait-seconds`) come from this table: holding "
            "a call open while a queue exists serves about 1.5 times more at 16 and 64 "
            "connections than never holding, 256 rows serve more than 64 at 256 connections, and "
            "where a 2 ms and a 5 ms hold tie within the noise, the shorter is kept.",
            "",
            f"| limits | {header} |",
            "|---|" + "---:|---:|" * len(SWEEP_CONNECTIONS),
        ]
        for rows, wait in SWEEP:
            name = sweep_name(rows, wait)
            cells = " | ".join(
                f"{self.rps(SWEEP_MODEL, name, c):,.0f} | "
                f"{self.median(SWEEP_MODEL, name, c, 'p99_ms'):.2f}"
                for c in SWEEP_CONNECTIONS
            )
            lines.append(f"| {name} | {cells} |")
        return [*lines, ""]

    def notes(self) -> list[str]:
        return [
            "RSS samples (s, MiB): " + ", ".join(f"{t:.0f}: {m:.1f}" for t, m in self.rss[::6]),
            "",
        ]


if __name__ == "__main__":
    sys.exit(main())
