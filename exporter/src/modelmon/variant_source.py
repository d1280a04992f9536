"""Which variant this process is now: fixed by --variant, or read live from the pod's labels.

Under Argo Rollouts a pod's role changes while it runs: the canary's pods become stable when
promoted. The engine relabels the running pods (`modelmon.io/variant`), and a downward API volume
shows the pod's labels as a file that the kubelet rewrites when they change. Answers name the
variant that served them, so that feedback finds its way back; reading the file keeps that name
true without a restart.

Under Flagger a pod keeps its role, but both roles run one pod template: Flagger copies the
canary's labels to its primary pods, changing only its selector label, whose value gains
`-primary` there (`--variant-primary-label` names that label).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from modelmon.contract import PRIMARY_SUFFIX, VARIANT_POD_LABEL, Variant
from modelmon.watched_file import WatchedFile

log = logging.getLogger("modelmon.exporter")

# How often the labels file is checked for a change (modelmon.watched_file).
CHECK_INTERVAL_SECONDS = 1.0


def variant_from_labels(text: str, primary_label: str | None = None) -> Variant | None:
    """The variant a downward API `labels` file (lines of key="value") names, if any: its
    modelmon.io/variant label, else whether `primary_label`'s value ends in -primary."""
    labels = {}
    for line in text.splitlines():
        key, _, quoted = line.partition("=")
        labels[key.strip()] = quoted.strip().strip('"')
    if VARIANT_POD_LABEL in labels:
        try:
            return Variant(labels[VARIANT_POD_LABEL])
        except ValueError:
            return None
    if primary_label is not None and labels.get(primary_label):
        return Variant.STABLE if labels[primary_label].endswith(PRIMARY_SUFFIX) else Variant.CANARY
    return None


class VariantSource:
    """The current variant; a missing or unreadable file keeps the last one known."""

    def __init__(
        self,
        initial: Variant,
        labels_file: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        primary_label: str | None = None,
    ) -> None:
        self._variant = initial
        self._primary_label = primary_label
        self._file = (
            None if labels_file is None else WatchedFile(labels_file, CHECK_INTERVAL_SECONDS, clock)
        )
        if self._file is not None:
            self._take(self._file, self._file.read)

    @property
    def current(self) -> Variant:
        if self._file is not None:
            self._take(self._file, self._file.changed_text)
        return self._variant

    def _take(self, labels: WatchedFile, read: Callable[[], str | None]) -> None:
        try:
            text = read()
        except OSError as exc:
            log.warning("keeping variant %s: %s: %s", self._variant, labels.path, exc)
            return
        if text is None:
            return
        found = variant_from_labels(text, self._primary_label)
        if found is None:
            log.warning("keeping variant %s: %s names none", self._variant, labels.path)
        elif found is not self._variant:
            log.info("variant %s -> %s (pod relabelled)", self._variant, found)
            self._variant = found
