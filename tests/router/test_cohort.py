"""The cohort function: stable across processes, monotonic in the weight, fair in share."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from modelmon.router.cohort import BUCKETS, bucket, draw_in_canary, in_canary

KEYS = [f"user{index:05d}" for index in range(20_000)]
Z_999 = 3.29  # two-sided 99.9 % normal quantile


def binomial_bound(n: int, p: float) -> float:
    return Z_999 * math.sqrt(p * (1 - p) / n)


def test_buckets_are_the_same_in_another_process():
    sample = KEYS[:200]
    code = (
        "import sys; from modelmon.router.cohort import bucket; "
        "print(','.join(str(bucket(k)) for k in sys.argv[1:]))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code, *sample],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
    )
    assert other.stdout.strip().split(",") == [str(bucket(k)) for k in sample]


def test_raising_the_weight_only_moves_users_to_the_canary():
    previous = {key for key in KEYS if in_canary(key, 0)}
    assert previous == set()
    for weight in (1, 10, 25, 50, 75, 99, 100):
        current = {key for key in KEYS if in_canary(key, weight)}
        assert previous <= current, f"someone left the canary going up to {weight}"
        previous = current
    assert previous == set(KEYS)


@pytest.mark.parametrize("weight", [10, 50, 90])
def test_share_of_users_matches_the_weight(weight):
    share = sum(in_canary(key, weight) for key in KEYS) / len(KEYS)
    assert abs(share - weight / 100) < binomial_bound(len(KEYS), weight / 100)


def test_buckets_cover_the_whole_range():
    seen = {bucket(key) for key in KEYS}
    assert min(seen) >= 0
    assert max(seen) < BUCKETS
    assert len(seen) > BUCKETS * 0.8


def test_keyless_draws_follow_the_weight_exactly_at_the_edges():
    assert not draw_in_canary(0.0, 0)
    assert draw_in_canary(0.999999, 100)
    assert draw_in_canary(0.099, 10)
    assert not draw_in_canary(0.1, 10)
