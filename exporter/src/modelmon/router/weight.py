"""The canary weight, read from a file (a mounted ConfigMap) and re-read when it changes."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("modelmon.router")

# Kubernetes updates a mounted ConfigMap by swapping a symlink; stat() follows it, so a change
# shows as a new inode or mtime. Checking at most this often keeps stat() off the hot path.
CHECK_INTERVAL_SECONDS = 0.5


class WeightError(ValueError):
    """The weight file does not hold a number from 0 to 100."""


def parse_weight(text: str) -> float:
    try:
        weight = float(text.strip())
    except ValueError:
        raise WeightError(f"not a number: {text.strip()[:40]!r}") from None
    if not 0 <= weight <= 100:
        raise WeightError(f"{weight:g} is outside 0..100")
    return weight


class WeightSource:
    """Current weight; a bad file keeps the last good weight and is reported, never fatal."""

    def __init__(
        self,
        path: Path,
        on_change: Callable[[float], None] = lambda weight: None,
        on_error: Callable[[str], None] = lambda message: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = path
        self._on_change = on_change
        self._on_error = on_error
        self._clock = clock
        self._lock = threading.Lock()
        self._signature: tuple[int, int] | None = None
        self._next_check = 0.0
        self._weight = self._load_initial()

    def _load_initial(self) -> float:
        stat = os.stat(self._path)
        weight = parse_weight(self._path.read_text())
        self._signature = (stat.st_ino, stat.st_mtime_ns)
        self._on_change(weight)
        return weight

    @property
    def weight(self) -> float:
        now = self._clock()
        if now >= self._next_check:
            with self._lock:
                if now >= self._next_check:
                    self._next_check = now + CHECK_INTERVAL_SECONDS
                    self._reload_if_changed()
        return self._weight

    def _reload_if_changed(self) -> None:
        try:
            stat = os.stat(self._path)
            signature = (stat.st_ino, stat.st_mtime_ns)
            if signature == self._signature:
                return
            self._signature = signature
            weight = parse_weight(self._path.read_text())
        except (OSError, WeightError) as exc:
            message = f"keeping canary weight {self._weight:g}: {self._path}: {exc}"
            log.warning(message)
            self._on_error(message)
            return
        if weight != self._weight:
            log.info("canary weight %g -> %g", self._weight, weight)
            self._weight = weight
            self._on_change(weight)
