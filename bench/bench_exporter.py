"""Exporter benchmark: throughput and latency of /predict, /metrics scrape time, RSS over time.

Side by side in one run, on this machine, with wrk at fixed concurrency:
  (a) modelmon-exporter, (b) the same with --metrics-enabled false, (c) the lab's approach
  (bench/baseline_app.py: FastAPI + prometheus-fastapi-instrumentator), all serving the same
  model artifact from one uvicorn process each. Rounds are interleaved so that drift in the
  machine's speed hits every server alike; the median round counts.
Writes bench/results-exporter.md. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

import modelmon
from local_stack.models import ensure_models
from local_stack.pods import free_port
from local_stack.processes import ManagedProcess, Supervisor, wait_until

BENCH_DIR = Path(__file__).resolve().parent
BIN_DIR = Path(sys.executable).parent
ROW = {f"x{i}": 0.1 * i for i in range(1, 11)}
MODEL = "model-v2.joblib"
RANDOM_SEED = 20261123


@dataclass(frozen=True)
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        sys.exit("bench: error: wrk is not installed: run `make bench`, which installs it")


def wrk_script(directory: Path, pause_ms: int = 0, *, random_pause: bool = False) -> Path:
    """wrk's Lua script for single-row predictions. `pause_ms` paces each connection: a fixed
    pause keeps all connections in step (they fire in bursts); a random one, exponential with
    that mean, makes them independent clients whose requests arrive as a Poisson stream."""
    kind = "random" if random_pause else "fixed"
    script = directory / f"predict-{kind}-{pause_ms}.lua"
    body = json.dumps({"features": ROW})
    pacing = ""
    if pause_ms and random_pause:
        pacing = (
            f"math.randomseed({RANDOM_SEED})\n"
            f"function delay() return math.floor(-math.log(1 - math.random()) * {pause_ms}) end\n"
        )
    elif pause_ms:
        pacing = f"function delay() return {pause_ms} end\n"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{body}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n' + pacing
    )
    return script


def _milliseconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, script: Path, seconds: int, connections: int) -> LoadResult:
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: .*", output)
    if socket_errors:
        print(f"    wrk: {socket_errors[0]}", flush=True)
    return LoadResult(
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),  # type: ignore[index]
        p50_ms=_milliseconds(percentiles["50"]),
        p99_ms=_milliseconds(percentiles["99"]),
        errors=int(errors[1]) if errors else 0,
    )


def server_commands(models: Path) -> dict[str, Callable[[int], list[str]]]:
    exporter = [
        str(BIN_DIR / "modelmon-exporter"),
        "--host",
        "127.0.0.1",
        "--model-path",
        str(models / MODEL),
    ]
    return {
        "a: modelmon": lambda port: [*exporter, "--port", str(port)],
        "b: modelmon, metrics off": lambda port: [
            *exporter,
            "--port",
            str(port),
            "--metrics-enabled",
            "false",
        ],
        "c: lab (FastAPI + instrumentator)": lambda port: [
            sys.executable,
            str(BENCH_DIR / "baseline_app.py"),
            "--port",
            str(port),
            "--model-path",
            str(models / MODEL),
        ],
    }


def start_server(supervisor: Supervisor, name: str, argv: list[str], port: int) -> ManagedProcess:
    process = supervisor.start(re.sub(r"\W+", "-", name), argv)

    def ready() -> bool:
        if not process.alive():
            raise RuntimeError(f"{name} exited:\n{process.log_tail()}")
        try:
            return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=1).ok
        except requests.RequestException:
            return False

    wait_until(ready, 60, describe=f"{name} ready")
    return process


def scrape_times_ms(url: str, count: int) -> list[float]:
    session = requests.Session()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        session.get(url, timeout=5).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return times


def rss_over_time(
    supervisor: Supervisor, argv: list[str], port: int, script: Path, seconds: int
) -> list[tuple[float, float]]:
    process = start_server(supervisor, "rss", argv, port)
    load = subprocess.Popen(
        [
            "wrk",
            "-t1",
            "-c16",
            f"-d{seconds}s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/predict",
        ],
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
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rss-seconds", type=int, default=300)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results-exporter.md")
    args = parser.parse_args()

    require_wrk()
    models = ensure_models(BIN_DIR / "modelmon-train", Path(modelmon.__file__).parent)
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    supervisor = Supervisor(workdir / "logs")
    script = wrk_script(workdir)
    commands = server_commands(models)
    results: dict[str, list[LoadResult]] = {name: [] for name in commands}
    scrape: list[float] = []
    try:
        for round_index in range(args.rounds):
            names = list(commands)
            names = names[round_index % len(names) :] + names[: round_index % len(names)]
            for name in names:
                port = free_port()
                process = start_server(supervisor, name, commands[name](port), port)
                url = f"http://127.0.0.1:{port}/predict"
                run_wrk(url, script, 2, args.connections)  # warm-up
                result = run_wrk(url, script, args.seconds, args.connections)
                results[name].append(result)
                print(
                    f"  round {round_index + 1}/{args.rounds} {name:<36} "
                    f"{result.requests_per_second:8.1f} req/s  p50 {result.p50_ms:6.2f} ms  "
                    f"p99 {result.p99_ms:6.2f} ms  non-2xx {result.errors}",
                    flush=True,
                )
                if name.startswith("a:"):
                    scrape += scrape_times_ms(f"http://127.0.0.1:{port}/metrics", 200)
                process.stop()
                supervisor.processes.remove(process)
        port = free_port()
        rss = rss_over_time(
            supervisor,
            [*commands["a: modelmon"](port), "--feedback-ttl-seconds", "60"],
            port,
            script,
            args.rss_seconds,
        )
    finally:
        supervisor.stop_all()
    args.out.write_text(report(results, scrape, rss, args))
    print(f"wrote {args.out}")
    return 0


def report(
    results: dict[str, list[LoadResult]],
    scrape: list[float],
    rss: list[tuple[float, float]],
    args: argparse.Namespace,
) -> str:
    def median(name: str, field: str) -> float:
        return statistics.median(getattr(r, field) for r in results[name])

    a, b, c = list(results)
    lines = [
        "# Exporter benchmark",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `make bench` (bench/bench_exporter.py) on "
        f"{psutil.cpu_count()} cores: wrk, 1 thread, {args.connections} connections, "
        f"{args.seconds} s per round, {args.rounds} interleaved rounds (median shown), "
        f"single-row `POST /predict` to {MODEL} (HistGradientBoostingRegressor), one uvicorn "
        "process per server.",
        "",
        "| server | req/s | p50 ms | p99 ms | non-2xx |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in results:
        lines.append(
            f"| {name} | {median(name, 'requests_per_second'):.1f} | {median(name, 'p50_ms'):.2f} "
            f"| {median(name, 'p99_ms'):.2f} | {sum(r.errors for r in results[name])} |"
        )
    throughput_vs_lab = median(a, "requests_per_second") / median(c, "requests_per_second")
    overhead = 1 - median(a, "requests_per_second") / median(b, "requests_per_second")
    scrape_sorted = sorted(scrape)
    p50 = statistics.median(scrape_sorted)
    p99 = scrape_sorted[int(0.99 * (len(scrape_sorted) - 1))]
    warm = [m for t, m in rss if t >= 90]
    growth = (warm[-1] - warm[0]) if len(warm) >= 2 else float("nan")
    lines += [
        "",
        "| ratio | value | target |",
        "|---|---:|---|",
        f"| throughput a / c (vs the lab's approach) | {throughput_vs_lab:.2f}× | ≥ 1.0× |",
        f"| metrics overhead 1 − a / b | {overhead * 100:.1f} % | ≤ 5 % |",
        f"| `/metrics` scrape, p50 / p99 over {len(scrape)} scrapes "
        f"| {p50:.2f} / {p99:.2f} ms | ≤ 10 ms |",
        f"| RSS after 90 s warm-up: first → last sample over a {args.rss_seconds} s run | "
        f"{warm[0] if warm else float('nan'):.1f} → {warm[-1] if warm else float('nan'):.1f} MiB "
        f"({growth:+.1f} MiB) | flat |",
        "",
        "The RSS run keeps wrk's load on (a) with `--feedback-ttl-seconds 60`: predictions that "
        "never get feedback leave the store after a minute, so the store reaches its steady size "
        "during warm-up.",
        "",
        "RSS samples (s, MiB): " + ", ".join(f"{t:.0f}: {m:.1f}" for t, m in rss[::6]),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
