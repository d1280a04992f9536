"""Soak benchmark: the local profile under a steady rate through the router, with feedback, for
10 minutes; every 10 s it records each process's resident memory and open file descriptors and
the exporters' feedback store, and at the end the errors. Results in bench/results-soak.md.

Target: after a 2-minute warm-up, no model-serving process (exporters, router) grows its RSS by
5 % or more, and no request fails. Prometheus and Alertmanager are reported beside them; their
memory grows with the data they keep by design.

    .venv/bin/python bench/bench_soak.py [--duration 600] [--rate 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests
from prometheus_client.parser import text_string_to_metric_families

from local_stack.stack import LocalStack, StackOptions
from modelmon.contract import FEEDBACK_PENDING
from modelmon.ops.load import LoadPlan, LoadResult, Mix, run_load

RESULTS = Path(__file__).with_name("results-soak.md")
SAMPLE_EVERY = 10.0
WARM_UP = 120.0
GROWTH_TARGET = 0.05


@dataclass
class Sample:
    at: float
    rss: dict[str, float]  # process name -> MiB
    fds: dict[str, int]
    pending: dict[str, float]  # exporter -> predictions waiting for feedback


@dataclass
class Soak:
    samples: list[Sample] = field(default_factory=list)
    load: LoadResult | None = None


def processes(stack: LocalStack) -> dict[str, psutil.Process]:
    found = {pod.name: pod.process for pod in stack.pods if pod.process is not None}
    found.update(stack.servers)
    return {name: psutil.Process(p.pid) for name, p in found.items() if p.alive()}


def pending(stack: LocalStack) -> dict[str, float]:
    found = {}
    for pod in stack.pods:
        if pod.container.command[0] != "modelmon-exporter":
            continue
        text = requests.get(pod.url("http", "/metrics"), timeout=5).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == FEEDBACK_PENDING.name:
                    found[pod.name] = sample.value
    return found


def sample(stack: LocalStack, started: float) -> Sample:
    rss, fds = {}, {}
    for name, process in processes(stack).items():
        with process.oneshot():
            rss[name] = process.memory_info().rss / 2**20
            fds[name] = process.num_fds()
    return Sample(time.monotonic() - started, rss, fds, pending(stack))


def run(duration: float, rate: float) -> Soak:
    soak = Soak()
    with LocalStack(StackOptions(release="soak")) as stack:
        router = stack.service_url("soak-model-exporter-router")
        plan = LoadPlan(
            url=router,
            rate=rate,
            duration=duration,
            concurrency=8,
            mix=Mix(health=0, predict=1, bad=0),
            seed=11,
        )
        worker = threading.Thread(target=lambda: setattr(soak, "load", run_load(plan)))
        started = time.monotonic()
        worker.start()
        while worker.is_alive():
            soak.samples.append(sample(stack, started))
            print(f"{soak.samples[-1].at:6.0f} s  {soak.samples[-1].rss}", flush=True)
            worker.join(timeout=SAMPLE_EVERY)
        soak.samples.append(sample(stack, started))
    return soak


def growth(soak: Soak, name: str) -> tuple[float, float, float]:
    """(RSS after warm-up, RSS at the end, growth) of one process, in MiB; the after-warm-up
    value is the median of the first minute past the warm-up, so one early sample does not
    decide it."""
    after = [s.rss[name] for s in soak.samples if WARM_UP <= s.at < WARM_UP + 60 and name in s.rss]
    first = statistics.median(after) if after else soak.samples[0].rss[name]
    last = soak.samples[-1].rss[name]
    return first, last, (last - first) / first


def report(soak: Soak, duration: float, rate: float) -> str:
    assert soak.load is not None
    load = soak.load
    sent = sum(load.requests.values())
    errors = sum(n for (_kind, code), n in load.requests.items() if code != "200")
    errors += sum(n for code, n in load.feedback.items() if code != "200")
    lines = [
        "# Soak benchmark",
        "",
        f"`bench/bench_soak.py`: the local profile, {duration / 60:g} minutes at {rate:g} "
        "predictions/s through the router, each with its ground truth; a sample every "
        f"{SAMPLE_EVERY:g} s. Growth is measured from the first minute after a "
        f"{WARM_UP / 60:g}-minute warm-up to the end.",
        "",
        f"Requests: {sent} predictions and {sum(load.feedback.values())} feedback posts in "
        f"{load.elapsed:.0f} s; **errors: {errors}** (target 0).",
        "",
        "| process | RSS after warm-up (MiB) | RSS at the end (MiB) | growth "
        "| open fds (start → end) | target |",
        "|---|---:|---:|---:|---|---|",
    ]
    verdicts = []
    for name in sorted(soak.samples[-1].rss):
        first, last, grew = growth(soak, name)
        serving = not name.startswith(("prometheus", "alertmanager"))
        verdict = ("met" if grew < GROWTH_TARGET else "MISSED") if serving else "reported"
        verdicts.append(verdict)
        fds = f"{soak.samples[0].fds.get(name, 0)} → {soak.samples[-1].fds[name]}"
        lines.append(
            f"| {name} | {first:.1f} | {last:.1f} | {grew * 100:+.1f} % | {fds} | "
            f"{'< 5 %' if serving else '-'}: {verdict} |"
        )
    peak = max((max(s.pending.values(), default=0) for s in soak.samples), default=0)
    met = errors == 0 and "MISSED" not in verdicts
    lines += [
        "",
        f"Feedback store: at most {peak:.0f} predictions waiting for ground truth at a sample "
        "(each prediction's truth follows at once).",
        "",
        f"Verdict: {'every target met' if met else 'a target missed'}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--rate", type=float, default=20.0, help="predictions/s (default 20)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    soak = run(args.duration, args.rate)
    text = report(soak, args.duration, args.rate)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
