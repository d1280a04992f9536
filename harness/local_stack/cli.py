"""`local-stack demo`: the chart's local profile, running until Ctrl-C."""

from __future__ import annotations

import argparse
import errno
import logging
import shutil
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from local_stack.chart import ChartError
from local_stack.manifests import ManifestError
from local_stack.models import ModelBuildError
from local_stack.pods import LOOPBACK
from local_stack.processes import wait_until
from local_stack.stack import DEFAULT_VALUES, LocalStack, StackError, StackOptions
from local_stack.toolchain import REPO_ROOT, ToolchainError
from modelmon.ops.prometheus import PrometheusError

DEMO_ROOT = REPO_ROOT / ".cache" / "demo"
EXPECTED_ERRORS = (
    ChartError,
    ManifestError,
    ModelBuildError,
    PrometheusError,
    StackError,
    TimeoutError,
    ToolchainError,
)


class Shutdown(Exception):
    """SIGINT or SIGTERM arrived."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)


def _raise_shutdown(signum: int, _frame: FrameType | None) -> None:
    # A second Ctrl-C must not interrupt the orderly stop that the first one started.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Shutdown(signum)


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StackError(
                    f"port {port} is already in use: stop what listens there, or choose another "
                    f"port with --prometheus-port (make demo PROMETHEUS_PORT=...)"
                ) from None
            raise


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="local-stack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the local profile until Ctrl-C")
    demo.add_argument(
        "--values", type=Path, action="append", help=f"values file (default: {DEFAULT_VALUES})"
    )
    demo.add_argument(
        "--set",
        dest="set_values",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one value, as helm --set",
    )
    demo.add_argument("--prometheus-port", type=int, default=9090)
    demo.add_argument("--release", default="demo")
    demo.add_argument("--namespace", default="kubeflow-user01")
    demo.add_argument(
        "--workdir",
        type=Path,
        help=f"where logs, rendered files and Prometheus data go (default: {DEMO_ROOT}/<port>, "
        "so two demos on two ports do not share it)",
    )
    return parser.parse_args(argv)


def _print_urls(stack: LocalStack) -> None:
    print(f"{'Prometheus':<32} {stack.prometheus.url}/targets")
    commands = {pod.workload: pod.container.command[0] for pod in stack.pods}
    for service in stack.services:
        if not any(p.name == "http" for p in service.ports):
            continue
        workload = next((w for w in commands if w == service.name), "")
        api = "  (API docs: /docs)" if commands.get(workload) == "modelmon-exporter" else ""
        print(f"{service.name:<32} {stack.service_url(service.name)}/metrics{api}", flush=True)
    routers = [w for w, command in commands.items() if command == "modelmon-router"]
    if routers:
        print(
            f"Predictions go to the router:    POST {stack.service_url(routers[0])}/predict",
            flush=True,
        )


def demo(args: argparse.Namespace) -> int:
    set_values = {}
    for item in args.set_values:
        key, sep, value = item.partition("=")
        if not sep:
            raise StackError(f"--set {item}: expected KEY=VALUE")
        set_values[key] = value
    _check_port_free(args.prometheus_port)
    workdir = args.workdir or DEMO_ROOT / str(args.prometheus_port)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    options = StackOptions(
        values_files=tuple(args.values or (DEFAULT_VALUES,)),
        set_values=set_values,
        release=args.release,
        namespace=args.namespace,
        prometheus_port=args.prometheus_port,
        workdir=workdir,
    )
    started = time.monotonic()
    print(f"Starting the local stack (logs in {workdir / 'logs'}) ...", flush=True)
    with LocalStack(options) as stack:
        wait_until(stack.targets_healthy, 30, describe="all Prometheus targets up")
        print(f"Ready in {time.monotonic() - started:.1f} s: every target is up.", flush=True)
        _print_urls(stack)
        print("Press Ctrl-C to stop.", flush=True)
        while True:
            time.sleep(0.5)


def _say_pod_events() -> None:
    """The kubelet's restarts and probe failures, on the demo's output."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    for name in ("local_stack.kubelet", "local_stack.selection"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    _say_pod_events()
    signal.signal(signal.SIGINT, _raise_shutdown)
    signal.signal(signal.SIGTERM, _raise_shutdown)
    try:
        return demo(args)
    except Shutdown as stop:
        print(f"Stopped on {stop}; every process of the stack has exited.", flush=True)
        return 0
    except EXPECTED_ERRORS as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"local-stack: error: {first_line}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
