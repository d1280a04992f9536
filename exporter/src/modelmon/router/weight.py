"""The canary weight, read from a file (a mounted ConfigMap) and re-read when it changes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from modelmon.watched_file import WatchedFile

log = logging.getLogger("modelmon.router")

# How often the file is checked for a change (modelmon.watched_file).
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
        self._file = WatchedFile(path, CHECK_INTERVAL_SECONDS, clock)
        self._on_change = on_change
        self._on_error = on_error
        self._weight = parse_weight(self._file.read())
        self._on_change(self._weight)

    @property
    def weight(self) -> float:
        try:
            text = self._file.changed_text()
            if text is None:
                return self._weight
            weight = parse_weight(text)
        except (OSError, WeightError) as exc:
            message = f"keeping canary weight {self._weight:g}: {self._file.path}: {exc}"
            log.warning(message)
            self._on_error(message)
            return self._weight
        if weight != self._weight:
            log.info("canary weight %g -> %g", self._weight, weight)
            self._weight = weight
            self._on_change(weight)
        return self._weight
