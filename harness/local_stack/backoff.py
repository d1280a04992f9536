"""The kubelet's restart back-off for a container that keeps exiting (CrashLoopBackOff).

As the kubelet decides it (kubernetes pkg/kubelet/kuberuntime/kuberuntime_manager.go, doBackOff,
over client-go's util/flowcontrol Backoff): the first exit is restarted at once; each later exit
waits the current back-off, measured from when the container finished, and doubles it, from 10 s
up to 5 minutes; an exit more than twice the maximum after the last restart starts over.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_SECONDS = 10.0
MAXIMUM_SECONDS = 300.0


@dataclass
class RestartBackoff:
    initial: float = INITIAL_SECONDS
    maximum: float = MAXIMUM_SECONDS
    _backoff: float | None = None  # None until the first restart
    _last_restart: float = 0.0

    def delay(self, finished_at: float) -> float:
        """Seconds to wait, after the container finished at `finished_at`, before restarting it;
        records the restart."""
        expired = finished_at - self._last_restart > 2 * self.maximum
        if self._backoff is None or expired:
            wait = 0.0
            self._backoff = self.initial
        else:
            wait = self._backoff
            self._backoff = min(self._backoff * 2, self.maximum)
        self._last_restart = finished_at + wait
        return wait
