"""Router benchmark: the latency the canary router adds to a prediction.

Side by side in one run, with wrk at 32 connections: `POST /predict` straight to a stable
exporter, and the same request through modelmon-router (weight 0, so every request goes to that
same exporter). Rounds are interleaved; the median round counts. Three loads:

- paced: each connection pauses a random time (exponential, mean --pause-ms) between requests,
  like 32 independent clients; the offered rate stays far below what either path can serve, so
  the added latency is the router's own cost. This is the load the target is set for.
- in step: the same mean pause, fixed, so all 32 connections fire together in bursts; p99 then
  includes waiting behind the burst, twice on the router's path.
- saturating: wrk as fast as it can, the throughput ceiling.
Writes bench/results-router.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

import modelmon
from local_stack.models import ensure_models
from local_stack.pods import free_port
from local_stack.processes import Supervisor
from wrk_load import (
    BIN_DIR,
    MODEL,
    LoadResult,
    require_wrk,
    run_wrk,
    start_server,
    wrk_script,
)

BENCH_DIR = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--pause-ms",
        type=int,
        default=400,
        help="pause between a connection's requests in the paced load",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results-router.md")
    args = parser.parse_args()

    require_wrk()
    models = ensure_models(BIN_DIR / "modelmon-train", Path(modelmon.__file__).parent)
    workdir = Path(tempfile.mkdtemp(prefix="bench-router-"))
    supervisor = Supervisor(workdir / "logs")
    scripts = {
        "paced": wrk_script(workdir, args.pause_ms, random_pause=True),
        "in step": wrk_script(workdir, args.pause_ms),
        "saturating": wrk_script(workdir),
    }
    (workdir / "weight").write_text("0")
    exporter_port, router_port = free_port(), free_port()
    start_server(
        supervisor,
        "exporter",
        [
            str(BIN_DIR / "modelmon-exporter"),
            "--host",
            "127.0.0.1",
            "--port",
            str(exporter_port),
            "--model-path",
            str(models / MODEL),
        ],
        exporter_port,
        pin=False,
    )
    exporter = f"http://127.0.0.1:{exporter_port}"
    start_server(
        supervisor,
        "router",
        [
            str(BIN_DIR / "modelmon-router"),
            "--host",
            "127.0.0.1",
            "--port",
            str(router_port),
            "--stable-url",
            exporter,
            "--canary-url",
            exporter,
            "--weight-file",
            str(workdir / "weight"),
        ],
        router_port,
        pin=False,
    )
    targets = {
        "direct": f"{exporter}/predict",
        "through the router": f"http://127.0.0.1:{router_port}/predict",
    }
    results: dict[str, list[LoadResult]] = {
        f"{name}, {load}": [] for load in scripts for name in targets
    }
    try:
        for url in targets.values():
            run_wrk(url, scripts["saturating"], 2, args.connections, pin=False)  # warm-up
        for round_index in range(args.rounds):
            names = list(targets)[:: 1 if round_index % 2 == 0 else -1]
            for load, script in scripts.items():
                for name in names:
                    result = run_wrk(
                        targets[name], script, args.seconds, args.connections, pin=False
                    )
                    results[f"{name}, {load}"].append(result)
                    print(
                        f"  round {round_index + 1}/{args.rounds} {name + ', ' + load:<32} "
                        f"{result.requests_per_second:8.1f} req/s  p50 {result.p50_ms:6.2f} ms"
                        f"  p99 {result.p99_ms:6.2f} ms  non-2xx {result.errors}",
                        flush=True,
                    )
    finally:
        supervisor.stop_all()

    def median(name: str, field: str) -> float:
        return statistics.median(getattr(r, field) for r in results[name])

    def added(load: str, field: str) -> float:
        """Median over rounds of router minus direct, each pair measured back to back, so a
        drift in the host's speed between rounds cancels out."""
        pairs = zip(results[f"through the router, {load}"], results[f"direct, {load}"], strict=True)
        return statistics.median(
            getattr(via, field) - getattr(direct, field) for via, direct in pairs
        )

    lines = [
        "# Router benchmark",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `make bench` (bench/bench_router.py) on "
        f"{psutil.cpu_count()} cores: wrk, 1 thread, {args.connections} connections, "
        f"{args.seconds} s per round, {args.rounds} interleaved rounds (median shown), "
        f"single-row `POST /predict` to {MODEL}. The router (weight 0) and the exporter are one "
        "uvicorn process each, on the same machine as wrk. Paced: each connection pauses a random "
        f"time, exponential with mean {args.pause_ms} ms, between requests (independent clients). "
        f"In step: a fixed {args.pause_ms} ms pause, so the connections fire in bursts of "
        f"{args.connections}.",
        "",
        "| path | req/s | p50 ms | p99 ms | non-2xx |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {median(name, 'requests_per_second'):.1f} | {median(name, 'p50_ms'):.2f} "
            f"| {median(name, 'p99_ms'):.2f} | {sum(r.errors for r in results[name])} |"
            for name in results
        ),
        "",
        "| added by the router (median of per-round differences) | paced | in step | saturating "
        "| target (paced) |",
        "|---|---:|---:|---:|---|",
        *(
            f"| {percentile} | "
            + " | ".join(f"{added(load, field):+.2f} ms" for load in scripts)
            + (" | ≤ 2 ms |" if percentile == "p99" else " | |")
            for percentile, field in (("p50", "p50_ms"), ("p99", "p99_ms"))
        ),
        "",
        "Paced, the added latency is the router's own cost. In step, p99 also holds the wait "
        "behind a burst of 32 requests, which the router's path pays twice (once in the router, "
        "once in the exporter). Saturating, the router and the exporter share two cores with wrk, "
        "so its added latency there is mostly queueing behind a CPU-bound process.",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
