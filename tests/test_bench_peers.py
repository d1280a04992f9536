"""The benchmark's peers are set up as bench/peers.py says: MLServer loads the estimator with the
exporter's own scikit-learn, numpy and joblib, so both serve the same pickled model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_PINS = ("scikit-learn", "numpy", "joblib", "scipy", "threadpoolctl")


def pins(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^([a-z0-9-]+)==(\S+)", path.read_text(), re.MULTILINE))


@pytest.mark.parametrize("package", SHARED_PINS)
def test_mlserver_gets_the_exporters_version_of(package):
    exporter = pins(REPO_ROOT / "exporter" / "requirements.txt")
    mlserver = pins(REPO_ROOT / "bench" / "mlserver.txt")
    assert mlserver[package] == exporter[package]


def test_the_mlserver_lock_pins_what_its_input_names():
    wanted = pins(REPO_ROOT / "bench" / "mlserver.in")
    locked = pins(REPO_ROOT / "bench" / "mlserver.txt")
    assert {name: locked.get(name) for name in wanted} == wanted
