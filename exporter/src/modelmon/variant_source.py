"""Which variant this process is now: fixed by --variant, or read live from the pod's labels.

Under Argo Rollouts a pod's role changes while it runs: the canary's pods become stable when
promoted. The engine relabels the running pods (`modelmon.io/variant`), and a downward API volume
shows the pod's labels as a file that the kubelet rewrites when they change. Answers name the
variant that served them, so that feedback finds its way back; reading the file keeps that name
true without a restart.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from modelmon.contract import VARIANT_POD_LABEL, Variant

log = logging.getLogger("modelmon.exporter")

# The kubelet swaps a symlink to update the file; stat() shows a new inode or mtime.
CHECK_INTERVAL_SECONDS = 1.0


def variant_from_labels(text: str) -> Variant | None:
    """The variant a downward API `labels` file names (lines of key="value"), if any."""
    for line in text.splitlines():
        key, _, quoted = line.partition("=")
        if key.strip() == VARIANT_POD_LABEL:
            try:
                return Variant(quoted.strip().strip('"'))
            except ValueError:
                return None
    return None


class VariantSource:
    """The current variant; a missing or unreadable file keeps the last one known."""

    def __init__(
        self,
        initial: Variant,
        labels_file: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._variant = initial
        self._file = labels_file
        self._clock = clock
        self._lock = threading.Lock()
        self._signature: tuple[int, int] | None = None
        self._next_check = 0.0
        if labels_file is not None:
            self._reload_if_changed(labels_file)

    @property
    def current(self) -> Variant:
        if self._file is None:
            return self._variant
        now = self._clock()
        if now >= self._next_check:
            with self._lock:
                if now >= self._next_check:
                    self._next_check = now + CHECK_INTERVAL_SECONDS
                    self._reload_if_changed(self._file)
        return self._variant

    def _reload_if_changed(self, labels_file: Path) -> None:
        try:
            stat = os.stat(labels_file)
            signature = (stat.st_ino, stat.st_mtime_ns)
            if signature == self._signature:
                return
            self._signature = signature
            found = variant_from_labels(labels_file.read_text())
        except OSError as exc:
            log.warning("keeping variant %s: %s: %s", self._variant, labels_file, exc)
            return
        if found is None:
            log.warning("keeping variant %s: %s names none", self._variant, labels_file)
        elif found is not self._variant:
            log.info("variant %s -> %s (pod relabelled)", self._variant, found)
            self._variant = found
