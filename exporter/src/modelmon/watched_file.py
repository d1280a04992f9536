"""A file Kubernetes rewrites in place (a mounted ConfigMap, a downward API volume), re-read only
when it changed: the router's weight file, the exporter's pod labels.

The kubelet updates such a file by swapping a symlink; stat() follows it, so a change shows as a
new inode or mtime. Checking at most once per interval keeps stat() off the hot path.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path


class WatchedFile:
    def __init__(
        self, path: Path, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = path
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._signature: tuple[int, int] | None = None
        self._next_check = 0.0

    def _stat(self) -> tuple[int, int]:
        stat = os.stat(self.path)
        return stat.st_ino, stat.st_mtime_ns

    def read(self) -> str:
        """The text now, remembered as seen. Raises OSError."""
        signature = self._stat()
        text = self.path.read_text()
        self._signature = signature
        return text

    def changed_text(self) -> str | None:
        """The new text, once per change, when the interval has passed since the last check;
        else None. Raises OSError when the file cannot be read (the next check tries again)."""
        now = self._clock()
        if now < self._next_check:
            return None
        with self._lock:
            if now < self._next_check:
                return None
            self._next_check = now + self._interval
            signature = self._stat()
            if signature == self._signature:
                return None
            self._signature = signature
            return self.path.read_text()
