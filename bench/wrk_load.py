"""Load from wrk, a second process pinned to its own core, and the servers it measures.

Every benchmark here drives servers with wrk (one thread, fixed connections, closed loop) and
reads its own latency percentiles; a server is a process started and stopped per measurement.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from local_stack.processes import ManagedProcess, Supervisor, wait_until

BIN_DIR = Path(sys.executable).parent
ROW = {f"x{i}": 0.1 * i for i in range(1, 11)}
MODEL = "model-v2.joblib"
RANDOM_SEED = 20261123
# The server gets one core and wrk the other, so neither steals the other's time.
SERVER_CORE = "0"
LOAD_CORE = "1"


@dataclass(frozen=True)
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers and socket errors (connect, read, write, timeout)


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        sys.exit("bench: error: wrk is not installed: run `make bench`, which installs it")


def _unpinned(argv: Sequence[str], core: str) -> list[str]:
    return list(argv)


def pinned(argv: Sequence[str], core: str) -> list[str]:
    """argv run on one core (its children too), when the machine has more than one."""
    if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        return list(argv)
    return ["taskset", "-c", core, *argv]


def wrk_script(
    directory: Path,
    pause_ms: int = 0,
    *,
    random_pause: bool = False,
    body: Mapping[str, Any] | None = None,
    name: str = "predict",
) -> Path:
    """wrk's Lua script for one JSON request, a single-row prediction by default. `pause_ms`
    paces each connection: a fixed pause keeps all connections in step (they fire in bursts); a
    random one, exponential with that mean, makes them independent clients whose requests arrive
    as a Poisson stream."""
    kind = "random" if random_pause else "fixed"
    script = directory / f"{name}-{kind}-{pause_ms}.lua"
    text = json.dumps(body if body is not None else {"features": ROW})
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
        f"wrk.body = '{text}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n' + pacing
    )
    return script


def _milliseconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(
    url: str, script: Path, seconds: int, connections: int, *, pin: bool = True
) -> LoadResult:
    """wrk against `url`; on its own core unless `pin` is false."""
    command = pinned if pin else _unpinned
    output = subprocess.run(
        command(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "--latency",
                "-s",
                str(script),
                url,
            ],
            LOAD_CORE,
        ),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non_2xx[1]) if non_2xx else 0
    if socket_errors:
        errors += sum(int(count) for count in socket_errors.groups())
    return LoadResult(
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),  # type: ignore[index]
        p50_ms=_milliseconds(percentiles["50"]),
        p99_ms=_milliseconds(percentiles["99"]),
        errors=errors,
    )


def start_server(
    supervisor: Supervisor,
    name: str,
    argv: list[str],
    port: int,
    ready_path: str = "/metrics",
    env: Mapping[str, str] | None = None,
    *,
    pin: bool = True,
) -> ManagedProcess:
    """Starts a server (on the server core unless `pin` is false); returns once `ready_path`
    answers 200."""
    command = pinned(argv, SERVER_CORE) if pin else list(argv)
    process = supervisor.start(re.sub(r"\W+", "-", name), command, env=env)

    def ready() -> bool:
        if not process.alive():
            raise RuntimeError(f"{name} exited:\n{process.log_tail()}")
        try:
            return requests.get(f"http://127.0.0.1:{port}{ready_path}", timeout=1).ok
        except requests.RequestException:
            return False

    wait_until(ready, 120, describe=f"{name} ready")
    return process
