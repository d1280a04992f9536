"""`make demo` as a user runs it: healthy within 30 s, gone without a trace on a signal."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import requests

from local_stack.pods import free_port

BIN_DIR = Path(sys.executable).parent
READY_WITHIN_SECONDS = 30


@dataclass
class RunningDemo:
    popen: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.popen.poll() is not None:
                    break
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(
            f"{text!r} not printed within {timeout} s; output:\n" + "".join(self.seen)
        )

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.popen.pid).children(recursive=True)


def start_demo(argv: list[str], cwd: Path, new_session: bool = False) -> RunningDemo:
    popen = subprocess.Popen(
        argv,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=new_session,
    )
    demo = RunningDemo(popen)

    def pump() -> None:
        assert popen.stdout is not None
        for line in popen.stdout:
            demo.lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return demo


@pytest.fixture
def demo_args(tmp_path: Path) -> tuple[list[str], int]:
    port = free_port()
    return (
        [
            str(BIN_DIR / "local-stack"),
            "demo",
            "--prometheus-port",
            str(port),
            "--workdir",
            str(tmp_path / "demo"),
        ],
        port,
    )


def assert_target_up(port: int) -> None:
    targets = requests.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=5).json()["data"][
        "activeTargets"
    ]
    assert targets
    assert all(t["health"] == "up" for t in targets), targets


def assert_all_gone(processes: list[psutil.Process]) -> None:
    psutil.wait_procs(processes, timeout=5)
    left = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"left behind: {[(p.pid, p.cmdline()) for p in left]}"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_demo_is_healthy_then_stops_cleanly_on_a_signal(repo_root, demo_args, signum):
    argv, port = demo_args
    demo = start_demo(argv, repo_root)
    try:
        demo.wait_for("every target is up", READY_WITHIN_SECONDS)
        assert_target_up(port)
        children = demo.descendants()
        assert len(children) >= 3, "Prometheus and two exporters"
        demo.popen.send_signal(signum)
        assert demo.popen.wait(timeout=30) == 0
        demo.wait_for("every process of the stack has exited", 5)
        assert_all_gone(children)
    finally:
        if demo.popen.poll() is None:
            demo.popen.kill()


def test_make_demo_stops_on_ctrl_c(repo_root):
    """Ctrl-C in a terminal signals the whole foreground process group: make and the demo."""
    port = free_port()
    demo = start_demo(
        ["make", "--no-print-directory", "demo", f"PROMETHEUS_PORT={port}"],
        repo_root,
        new_session=True,
    )
    try:
        demo.wait_for("every target is up", READY_WITHIN_SECONDS)
        assert_target_up(port)
        children = demo.descendants()
        os.killpg(demo.popen.pid, signal.SIGINT)
        demo.popen.wait(timeout=30)
        assert_all_gone(children)
    finally:
        if demo.popen.poll() is None:
            demo.popen.kill()


def test_a_taken_port_is_a_one_line_error(repo_root, demo_args):
    argv, port = demo_args
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        result = subprocess.run(argv, cwd=repo_root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"local-stack: error: port {port} is already in use: stop what listens there, or "
        "choose another port with --prometheus-port (make demo PROMETHEUS_PORT=...)"
    ]
    assert "Traceback" not in result.stdout + result.stderr


def test_a_bad_values_file_is_a_one_line_error(repo_root, demo_args, tmp_path):
    argv, _ = demo_args
    bad = tmp_path / "bad.yaml"
    bad.write_text("model-exporter: [not, a, map]\n")
    result = subprocess.run(
        [*argv, "--values", str(bad)], cwd=repo_root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("local-stack: error: helm template failed:")


def demo_on_port(port: int) -> list[str]:
    """The demo with its default workdir (.cache/demo/<port>), as `make demo` runs it."""
    return [str(BIN_DIR / "local-stack"), "demo", "--prometheus-port", str(port)]


def test_the_demo_restarts_a_killed_pod_says_so_and_keeps_serving(repo_root):
    port = free_port()
    demo = start_demo(demo_on_port(port), repo_root)
    try:
        demo.wait_for("every target is up", READY_WITHIN_SECONDS)
        router = demo.wait_for("Predictions go to the router", 5).split("POST ")[1].strip()
        [canary] = [p for p in demo.descendants() if "--variant=canary" in p.cmdline()]
        canary.kill()
        demo.wait_for("container exited with code -9", 10)
        demo.wait_for("container started again (restart 1)", 15)
        answers = [
            requests.post(
                router, json={"features": {f"x{i}": 0.5 for i in range(1, 11)}}, timeout=10
            ).status_code
            for _ in range(20)
        ]
        assert answers == [200] * 20
        assert demo.popen.poll() is None, "the demo goes on"
    finally:
        demo.popen.send_signal(signal.SIGINT)
        demo.popen.wait(timeout=30)


def test_two_demos_in_one_checkout_bind_loopback_only_and_keep_apart(repo_root):
    ports = [free_port(), free_port()]
    demos = [start_demo(demo_on_port(port), repo_root) for port in ports]
    try:
        for demo in demos:
            demo.wait_for("every target is up", 2 * READY_WITHIN_SECONDS)
        for demo, port in zip(demos, ports, strict=True):
            assert_target_up(port)
            logs = repo_root / ".cache" / "demo" / str(port) / "logs"
            assert any(f"logs in {logs}" in line for line in demo.seen), demo.seen[:3]
            assert any(logs.glob("*.log")), f"{logs} holds this demo's logs"
            listening = [
                connection.laddr
                for process in [psutil.Process(demo.popen.pid), *demo.descendants()]
                for connection in process.net_connections(kind="inet")
                if connection.status == psutil.CONN_LISTEN
            ]
            assert listening, "the demo listens"
            assert {address.ip for address in listening} == {"127.0.0.1"}, listening
    finally:
        for demo in demos:
            demo.popen.send_signal(signal.SIGINT)
        for demo in demos:
            demo.popen.wait(timeout=30)
