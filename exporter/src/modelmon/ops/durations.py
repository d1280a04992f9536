"""Prometheus-style durations on the command line: 30s, 5m, 1h, 2d."""

from __future__ import annotations

import re

from modelmon.ops.errors import OpsError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(text: str) -> float:
    parts = re.fullmatch(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text.strip())
    if not text.strip() or parts is None:
        raise OpsError(f"duration {text!r}: expected e.g. 30s, 5m, 1h or 1h30m")
    total = sum(int(n) * UNITS[u] for n, u in zip(parts.groups(), "dhms", strict=True) if n)
    if total <= 0:
        raise OpsError(f"duration {text!r}: must be longer than 0")
    return float(total)


def seconds_or_zero(text: str) -> float:
    """A duration where 0 (or 0s) means none."""
    return 0.0 if text.strip() in {"0", "0s"} else seconds(text)
