"""Gate benchmark: how often a canary as good as stable is rolled back, and how soon a worse one is.

Simulated promotions (bench/gate_sim.py) through the steps 10 → 50 → 100 %, with ground truth
arriving 0, 5 and 30 minutes after each prediction, side by side in one run:

- the sequential gate (modelmon.gate), asked every minute, each step soaking 10 minutes;
- the anchor: the fixed-horizon Welch test .ci/promote-canary.sh re-ran at each step (10-minute
  soak, a 30-minute window, at least 200 samples per variant, three retries 5 minutes apart).

A/A runs (the canary's errors drawn like stable's) give the false-rollback rate, with its 95 %
Wilson interval; canaries whose MAE is 10, 20 and 50 % worse give the detection rate and the
minutes from the first canary prediction to the rollback. Writes bench/results-gate.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gate_sim import (
    STEPS,
    Outcome,
    RunResult,
    Traffic,
    WelchSchedule,
    sequential,
    simulate,
    welch,
    welch_checks,
)
from scipy.stats import binomtest

from modelmon.gate.decision import GatePolicy

BENCH_DIR = Path(__file__).resolve().parent
DELAYS = (0, 5, 30)
WORSE_BY = (0.0, 0.10, 0.20, 0.50)
PROCEDURES = ("sequential gate", "Welch per step")


@dataclass(frozen=True)
class Row:
    delay: int
    worse_by: float
    procedure: str
    results: list[RunResult]

    def share(self, outcome: Outcome) -> float:
        return sum(r.outcome is outcome for r in self.results) / len(self.results)

    def minutes(self, outcome: Outcome) -> list[int]:
        return sorted(r.minute for r in self.results if r.outcome is outcome)

    def rollback_interval(self) -> tuple[float, float]:
        rolled = sum(r.outcome is Outcome.ROLLED_BACK for r in self.results)
        ci = binomtest(rolled, len(self.results)).proportion_ci(method="wilson")
        return ci.low, ci.high


def run_scenario(delay: int, worse_by: float, runs: int, rate: int, seed: int) -> list[Row]:
    traffic = Traffic(rate=rate, label_delay=delay, worse_by=worse_by)
    schedule = WelchSchedule()
    return [
        Row(
            delay, worse_by, PROCEDURES[0], simulate(sequential(GatePolicy()), traffic, runs, seed)
        ),
        Row(
            delay,
            worse_by,
            PROCEDURES[1],
            simulate(welch(schedule), traffic, runs, seed + 1, gives_up=welch_checks(schedule)[-1]),
        ),
    ]


def _quantiles(values: list[int]) -> str:
    if not values:
        return "–"
    p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
    return f"{statistics.median(values):.0f} / {p90}"


def report(rows: list[Row], args: argparse.Namespace, seconds: float) -> str:
    policy = GatePolicy()
    lines = [
        "# Gate benchmark",
        "",
        f"Written by `bench/bench_gate.py` in {seconds:.0f} s: {args.aa_runs} A/A and "
        f"{args.runs} worse-canary promotions per label delay and procedure, {args.rate} "
        f"predictions a minute, stable MAE {Traffic.stable_mae}, steps "
        f"{' → '.join(map(str, STEPS))} %, at most {Traffic.minutes} minutes per promotion, "
        f"seed {args.seed}.",
        "",
        f"Sequential gate: {policy}.",
        f"Anchor: {WelchSchedule()}.",
        "",
        "Minutes are counted from the canary's first prediction; `median / p90`.",
        "",
        "| label delay | canary MAE | procedure | runs | rolled back | 95 % interval | promoted "
        "| undecided | minutes to roll back | minutes to promote |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        low, high = row.rollback_interval()
        lines.append(
            f"| {row.delay} min | {'as stable' if not row.worse_by else f'+{row.worse_by:.0%}'} "
            f"| {row.procedure} | {len(row.results)} | {row.share(Outcome.ROLLED_BACK):.1%} "
            f"| {low:.1%} – {high:.1%} | {row.share(Outcome.PROMOTED):.1%} "
            f"| {row.share(Outcome.UNDECIDED):.1%} "
            f"| {_quantiles(row.minutes(Outcome.ROLLED_BACK))} "
            f"| {_quantiles(row.minutes(Outcome.PROMOTED))} |"
        )
    lines += ["", *summary(rows, policy.alpha)]
    return "\n".join(lines) + "\n"


def summary(rows: list[Row], alpha: float) -> list[str]:
    gate_aa = [r for r in rows if r.procedure == PROCEDURES[0] and not r.worse_by]
    worst = max(gate_aa, key=lambda r: r.share(Outcome.ROLLED_BACK))
    met = all(r.share(Outcome.ROLLED_BACK) <= alpha for r in gate_aa)
    return [
        f"- False rollbacks of the sequential gate (A/A): at most "
        f"{worst.share(Outcome.ROLLED_BACK):.1%} (label delay {worst.delay} min); target ≤ "
        f"α = {alpha:g}: {'met' if met else 'NOT met'}.",
        *(
            f"- Canary {r.worse_by:+.0%} MAE, delay {r.delay} min: the gate rolls back "
            f"{r.share(Outcome.ROLLED_BACK):.0%} (minutes median / p90 "
            f"{_quantiles(r.minutes(Outcome.ROLLED_BACK))}); the anchor rolls back "
            f"{a.share(Outcome.ROLLED_BACK):.0%} and promotes {a.share(Outcome.PROMOTED):.0%}."
            for r, a in zip(rows[0::2], rows[1::2], strict=True)
            if r.worse_by
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--aa-runs", type=int, default=1000, help="A/A promotions per delay")
    parser.add_argument("--runs", type=int, default=500, help="promotions per worse canary")
    parser.add_argument("--rate", type=int, default=Traffic.rate, help="predictions a minute")
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results-gate.md")
    args = parser.parse_args()
    if min(args.aa_runs, args.runs, args.rate) < 1:
        parser.error("--aa-runs, --runs and --rate must be at least 1")

    started = time.monotonic()
    rows: list[Row] = []
    scenarios = [(delay, worse) for delay in DELAYS for worse in WORSE_BY]
    for number, (delay, worse) in enumerate(scenarios, 1):
        runs = args.aa_runs if not worse else args.runs
        rows += run_scenario(delay, worse, runs, args.rate, args.seed + 10 * number)
        print(
            f"  [{number}/{len(scenarios)}] delay {delay} min, canary {worse:+.0%}: "
            + ", ".join(
                f"{r.procedure} rolled back {r.share(Outcome.ROLLED_BACK):.1%}" for r in rows[-2:]
            ),
            flush=True,
        )
    text = report(rows, args, time.monotonic() - started)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
