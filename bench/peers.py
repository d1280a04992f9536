"""The servers the exporter benchmark measures side by side, each serving the same estimator.

modelmon             the exporter as shipped (micro-batching on), and with batching or metrics off
lab                  the users' lab approach: FastAPI + prometheus-fastapi-instrumentator
                     (bench/baseline_app.py), one synchronous handler per request
mlserver             Seldon MLServer's scikit-learn runtime, with adaptive batching set to the
                     exporter's limits, and without; installed by `make bench` into its own
                     virtual environment (bench/mlserver.txt) with the exporter's scikit-learn
ceiling              a constant answer and a pydantic-validated constant answer on the exporter's
                     HTTP stack (bench/ceiling_app.py): what any request costs before a model
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.dummy import DummyRegressor

from local_stack.pods import free_port
from modelmon import artifact
from modelmon.config import BATCHING_MAX_ROWS, BATCHING_MAX_WAIT_SECONDS
from wrk_load import BIN_DIR, ROW

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
MLSERVER_VENV = REPO_ROOT / ".tools" / "mlserver"
MLSERVER_MODEL = "model"
UVICORN_FLAGS = [
    "--log-level",
    "warning",
    "--no-access-log",
    "--http",
    "httptools",
    "--loop",
    "uvloop",
]


@dataclass(frozen=True)
class Server:
    """A server under test: how to start it on a port, and what one single-row request is."""

    name: str
    argv: Callable[[int], list[str]]
    path: str = "/predict"
    body: dict[str, Any] = field(default_factory=lambda: {"features": ROW})
    ready_path: str = "/metrics"


def exporter(name: str, model: Path, *flags: str) -> Server:
    def argv(port: int) -> list[str]:
        return [
            str(BIN_DIR / "modelmon-exporter"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--model-path",
            str(model),
            *flags,
        ]

    return Server(name, argv)


def lab(model: Path) -> Server:
    script = str(BENCH_DIR / "baseline_app.py")
    return Server(
        "lab (FastAPI + instrumentator)",
        lambda port: [sys.executable, script, "--port", str(port), "--model-path", str(model)],
    )


def ceiling(name: str, path: str) -> Server:
    def argv(port: int) -> list[str]:
        return [
            str(BIN_DIR / "uvicorn"),
            "--app-dir",
            str(BENCH_DIR),
            "ceiling_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *UVICORN_FLAGS,
        ]

    return Server(name, argv, path=path, ready_path="/healthz")


def mlserver_installed() -> bool:
    return (MLSERVER_VENV / "bin" / "mlserver").is_file()


def mlserver(name: str, model: Path, workdir: Path, *, adaptive: bool) -> Server:
    """MLServer serving the artifact's estimator (joblib, as its sklearn runtime loads it).

    `parallel_workers` is 0: inference runs in MLServer's main process, as the exporter's does
    in its own; MLServer 1.7.1's separate worker pool does not start on Python 3.11 here (its
    worker fails with "There is no current event loop in thread 'MainThread'")."""
    folder = workdir / f"mlserver-{model.stem}-{'adaptive' if adaptive else 'plain'}"
    model_folder = folder / MLSERVER_MODEL
    model_folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(artifact.load(model).estimator, model_folder / "model.joblib")
    settings: dict[str, Any] = {
        "name": MLSERVER_MODEL,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"},
    }
    if adaptive:
        settings["max_batch_size"] = int(BATCHING_MAX_ROWS)
        settings["max_batch_time"] = float(BATCHING_MAX_WAIT_SECONDS)
    (model_folder / "model-settings.json").write_text(json.dumps(settings))

    def argv(port: int) -> list[str]:
        server_settings = {
            "http_port": port,
            "grpc_port": free_port(),
            "metrics_port": free_port(),
            "parallel_workers": 0,
        }
        (folder / "settings.json").write_text(json.dumps(server_settings))
        return [str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(folder)]

    row = [ROW[name] for name in sorted(ROW, key=lambda n: int(n[1:]))]
    body = {
        "inputs": [{"name": "input-0", "shape": [1, len(row)], "datatype": "FP64", "data": row}]
    }
    return Server(
        name,
        argv,
        path=f"/v2/models/{MLSERVER_MODEL}/infer",
        body=body,
        ready_path=f"/v2/models/{MLSERVER_MODEL}/ready",
    )


def trivial_model(model: Path, out: Path) -> Path:
    """The artifact with its estimator swapped for one that predicts a constant: what serving
    costs when the model costs nothing."""
    served = artifact.load(model)
    features = np.zeros((2, len(served.feature_names)))
    estimator = DummyRegressor().fit(features, np.zeros(2))
    artifact.save(dataclasses.replace(served, estimator=estimator, algorithm="DummyRegressor"), out)
    return out
