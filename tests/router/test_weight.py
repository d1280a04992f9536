"""The weight file: read at start, re-read when it changes, bad content never fatal."""

from __future__ import annotations

import os

import pytest

from modelmon.router.weight import WeightError, WeightSource, parse_weight


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def replace(path, text):
    """As Kubernetes updates a mounted ConfigMap: a new file swapped in."""
    temporary = path.with_suffix(".new")
    temporary.write_text(text)
    os.replace(temporary, path)


def test_a_changed_file_takes_effect_without_a_restart(tmp_path):
    path = tmp_path / "weight"
    path.write_text("10\n")
    clock, changes = Clock(), []
    source = WeightSource(path, on_change=changes.append, clock=clock)
    assert source.weight == 10
    replace(path, "50")
    clock.now += 1
    assert source.weight == 50
    assert changes == [10, 50]


def test_a_bad_file_keeps_the_last_good_weight_and_is_reported(tmp_path):
    path = tmp_path / "weight"
    path.write_text("25")
    clock, errors = Clock(), []
    source = WeightSource(path, on_error=errors.append, clock=clock)
    for bad in ("fifty", "150", "-1"):
        replace(path, bad)
        clock.now += 1
        assert source.weight == 25
    path.unlink()
    clock.now += 1
    assert source.weight == 25
    assert len(errors) == 4


@pytest.mark.parametrize(("text", "weight"), [("0", 0), ("100", 100), (" 12.5\n", 12.5)])
def test_weights_from_0_to_100_are_read(text, weight):
    assert parse_weight(text) == weight


def test_an_unreadable_file_at_start_is_an_error(tmp_path):
    (tmp_path / "weight").write_text("lots")
    with pytest.raises(WeightError, match="not a number"):
        WeightSource(tmp_path / "weight")
