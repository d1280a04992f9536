"""The kubelet's part of the local stack: each pod's container is started, probed, restarted when
it exits or fails its liveness probe (with the kubelet's back-off), and stopped gracefully.

As a kubelet does it:
- a container that exits is restarted (restartPolicy Always) after RestartBackoff's delay, on
  the same pod, so on the same ports; the pod is not ready while its container is down;
- the startup probe gates the other two; readiness starts failing and liveness passing, and a
  probe flips after its threshold of results in a row; a liveness failure kills the container,
  which then restarts as any exited container does;
- a pod that is deleted leaves the endpoints at once, runs its preStop hook, gets SIGTERM, and
  SIGKILL when terminationGracePeriodSeconds (counted from the start, preStop included) is over.

Each pod has a worker thread; `on_change` is called whenever a pod's readiness changes, so the
Services' endpoints and the scrape targets follow.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from local_stack.backoff import INITIAL_SECONDS, RestartBackoff
from local_stack.manifests import ManifestError
from local_stack.pods import LocalPod, PodRuntime
from local_stack.probes import ProbeState, run_action
from local_stack.processes import ManagedProcess, Supervisor

log = logging.getLogger("local_stack.kubelet")
TICK_SECONDS = 0.05
MIN_GRACE_AFTER_PRE_STOP = 2.0  # the kubelet's extra time when a preStop hook used up the grace


@dataclass
class PodStatus:
    ready: bool = False
    restarts: int = 0
    last_exit_code: int | None = None
    # Why the container cannot be created at all (a Secret the namespace lacks, ...): the
    # kubelet's CreateContainerConfigError. The pod waits; nothing is retried here.
    error: str | None = None


class PodWorker:
    """One pod's container, probes and restarts, on a thread of its own."""

    def __init__(
        self,
        pod: LocalPod,
        runtime: PodRuntime,
        supervisor: Supervisor,
        on_change: Callable[[], None],
        backoff_initial: float,
    ) -> None:
        self.pod = pod
        self.status = PodStatus()
        self._runtime = runtime
        self._supervisor = supervisor
        self._on_change = on_change
        self._backoff = RestartBackoff(initial=backoff_initial)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._start_at = time.monotonic()
        self._probes: dict[str, ProbeState] = {}
        self._thread = threading.Thread(target=self._run, name=f"kubelet-{pod.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _set_ready(self, ready: bool) -> None:
        if self.status.ready != ready:
            self.status.ready = ready
            self._on_change()

    def _exec(self, command: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
        return self._runtime.exec_command(self.pod, command)

    def _launch(self, now: float) -> None:
        self._runtime.start(self.pod, self._supervisor)
        container = self.pod.container
        self._probes = {}
        for kind, probe, passing in (
            ("startup", container.startup, False),
            ("liveness", container.liveness, True),
            ("readiness", container.readiness, False),
        ):
            if probe is not None:
                self._probes[kind] = ProbeState(probe, now, passing)
        if self.status.restarts:
            log.warning(
                "pod %s: container started again (restart %d)", self.pod.name, self.status.restarts
            )
        if container.readiness is None and container.startup is None:
            self._set_ready(True)

    def _exited(self, process: ManagedProcess, now: float) -> None:
        code = process.popen.returncode
        self._supervisor.forget(process)
        self.pod.process = None
        self._set_ready(False)
        wait = self._backoff.delay(now)
        self._start_at = now + wait
        self.status.restarts += 1
        self.status.last_exit_code = code
        log.warning(
            "pod %s: container exited with code %s; restart %d in %.0f s",
            self.pod.name,
            code,
            self.status.restarts,
            wait,
        )

    def _probe(self, now: float) -> None:
        started = self._probes.get("startup")
        if started is not None and not started.passing:
            self._check("startup", started, now)
            return
        for kind in ("liveness", "readiness"):
            state = self._probes.get(kind)
            if state is not None and state.due(now):
                self._check(kind, state, now)
        if "readiness" not in self._probes and (started is None or started.passing):
            self._set_ready(True)

    def _check(self, kind: str, state: ProbeState, now: float) -> None:
        if not state.due(now):
            return
        passed = run_action(state.probe.action, self.pod, state.probe.timeout, self._exec)
        if not state.record(time.monotonic(), passed):
            return
        if kind == "readiness":
            self._set_ready(state.passing)
        elif not state.passing:  # a failed liveness or startup probe kills the container
            log.warning("pod %s: %s probe failed; killing the container", self.pod.name, kind)
            self._kill_container()

    def _kill_container(self) -> None:
        process = self.pod.process
        if process is not None:
            self._set_ready(False)
            self._graceful_stop(process)

    def _graceful_stop(self, process: ManagedProcess, grace: float | None = None) -> None:
        grace = self.pod.grace_seconds if grace is None else grace
        if grace == 0:  # `kubectl delete --grace-period=0 --force`: no hook, no SIGTERM
            process.stop(grace=0)
            return
        started = time.monotonic()
        hook = self.pod.container.pre_stop
        if hook is not None:
            run_action(hook, self.pod, grace, self._exec)
        left = max(MIN_GRACE_AFTER_PRE_STOP, grace - (time.monotonic() - started))
        process.stop(grace=left)

    def _run(self) -> None:
        while not self._stopping.is_set():
            now = time.monotonic()
            with self._lock:
                if self._stopping.is_set():
                    return
                process = self.pod.process
                if process is None:
                    if now >= self._start_at:
                        try:
                            self._launch(now)
                        except ManifestError as error:
                            self.status.error = str(error)
                            log.error("pod %s cannot start: %s", self.pod.name, error)
                            return
                elif not process.alive():
                    self._exited(process, now)
                else:
                    self._probe(now)
            time.sleep(TICK_SECONDS)

    def terminate(self, grace: float | None = None) -> None:
        """Deletes the pod: out of the endpoints at once, then preStop, SIGTERM, SIGKILL after
        the pod's grace period (or `grace`)."""
        self._stopping.set()
        with self._lock:
            self._set_ready(False)
            process = self.pod.process
            if process is not None and process.alive():
                self._graceful_stop(process, grace)
            if process is not None:
                self._supervisor.forget(process)
            self.pod.process = None
        self._thread.join(timeout=5)


class Kubelet:
    """The pods of the local stack, each run by a PodWorker."""

    def __init__(
        self,
        runtime: PodRuntime,
        supervisor: Supervisor,
        on_change: Callable[[], None],
        backoff_initial: float = INITIAL_SECONDS,
    ) -> None:
        self.runtime = runtime
        self._supervisor = supervisor
        self._on_change = on_change
        self._backoff_initial = backoff_initial
        self._workers: dict[str, PodWorker] = {}
        self._lock = threading.Lock()

    def run(self, pod: LocalPod) -> None:
        worker = PodWorker(
            pod, self.runtime, self._supervisor, self._on_change, self._backoff_initial
        )
        with self._lock:
            self._workers[pod.name] = worker
        worker.start()

    def terminate(self, name: str, grace: float | None = None) -> None:
        with self._lock:
            worker = self._workers.pop(name)
        worker.terminate(grace)
        self._on_change()

    def terminate_all(self) -> None:
        """Every pod at once, as a node drain would: each gets its own grace period."""
        with self._lock:
            names = list(self._workers)
        self.terminate_together(names)

    def terminate_together(self, names: list[str]) -> None:
        """These pods at once (a drain, an uninstall), each with its own grace period."""
        threads = [threading.Thread(target=self.terminate, args=(n,)) for n in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def status(self, name: str) -> PodStatus:
        with self._lock:
            return self._workers[name].status

    def pods(self) -> list[LocalPod]:
        with self._lock:
            return [worker.pod for worker in self._workers.values()]

    def ready(self) -> dict[str, bool]:
        with self._lock:
            return {name: w.status.ready for name, w in self._workers.items()}
