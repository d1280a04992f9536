"""Probes and hooks as the kubelet runs them: an HTTP GET (2xx and 3xx succeed), a TCP connect,
or a command (exit 0 succeeds), each within its timeout; a probe's result flips only after
`successThreshold` successes or `failureThreshold` failures in a row."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

import requests

from local_stack.manifests import Action, Probe
from local_stack.pods import LOOPBACK, LocalPod

ExecCommand = Callable[[tuple[str, ...]], tuple[list[str], dict[str, str]]]


def run_action(action: Action, pod: LocalPod, timeout: float, exec_command: ExecCommand) -> bool:
    """Whether the action succeeded. `exec_command` maps a container command to a local argv and
    the container's environment."""
    if action.kind == "httpGet":
        try:
            response = requests.get(pod.url(action.port, action.path), timeout=timeout)
        except requests.RequestException:
            return False
        return 200 <= response.status_code < 400
    if action.kind == "tcpSocket":
        try:
            with socket.create_connection((LOOPBACK, pod.port(action.port)), timeout=timeout):
                return True
        except OSError:
            return False
    argv, env = exec_command(action.command)
    try:
        done = subprocess.run(
            argv,
            env=env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@dataclass
class ProbeState:
    """One probe of one container: when it is due, and its result so far."""

    probe: Probe
    started_at: float
    passing: bool
    _next: float = 0.0
    _streak: int = 0  # results in a row that disagree with `passing`

    def __post_init__(self) -> None:
        self._next = self.started_at + self.probe.initial_delay

    def due(self, now: float) -> bool:
        return now >= self._next

    def record(self, now: float, succeeded: bool) -> bool:
        """Takes one result; returns True when `passing` flipped."""
        self._next = now + self.probe.period
        if succeeded == self.passing:
            self._streak = 0
            return False
        self._streak += 1
        needed = self.probe.success_threshold if succeeded else self.probe.failure_threshold
        if self._streak < needed:
            return False
        self.passing = succeeded
        self._streak = 0
        return True
