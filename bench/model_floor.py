"""The model floor: rows per second of the bare estimator, one thread, for given batch sizes.

Run as `python bench/model_floor.py MODEL ROWS...`; prints {rows: rows_per_second} as JSON.
What no server can beat: the benchmark runs it on the server's core.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from modelmon import artifact

SECONDS_PER_SIZE = 2.0


def rows_per_second(model: artifact.ModelArtifact, rows: int) -> float:
    matrix = np.random.default_rng(rows).uniform(0, 1, size=(rows, len(model.feature_names)))
    model.predict(matrix)  # warm
    calls = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < SECONDS_PER_SIZE:
        model.predict(matrix)
        calls += 1
    return calls * rows / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path, help="model artifact (joblib)")
    parser.add_argument("rows", type=int, nargs="+", help="batch sizes to time")
    args = parser.parse_args()
    model = artifact.load(args.model)
    threadpool_limits(limits=1)  # as the exporter's default --model-threads
    print(json.dumps({rows: rows_per_second(model, rows) for rows in args.rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
