"""Sticky cohorts: a user key always lands in the same bucket, in every process and release.

A key's bucket is the first 8 bytes of its SHA-256, modulo BUCKETS. A user is in the canary
when its bucket is below weight × BUCKETS / 100, so raising the weight only adds buckets: users
move from stable to canary and never back, and lowering it reverses exactly those moves.
"""

from __future__ import annotations

import hashlib

BUCKETS = 10_000
MAX_WEIGHT = 100


def bucket(user_key: str) -> int:
    digest = hashlib.sha256(user_key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_canary(user_key: str, weight: float) -> bool:
    return bucket(user_key) < weight * BUCKETS / MAX_WEIGHT


def draw_in_canary(uniform_draw: float, weight: float) -> bool:
    """For requests without a user key: a fresh draw in [0, 1) per request."""
    return uniform_draw * MAX_WEIGHT < weight
