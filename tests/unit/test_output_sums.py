"""The predicted values' sums the exporter counts, by either path, are numpy's."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from modelmon.metrics import SMALL_BATCH_ROWS, output_sums

finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(arrays(np.float64, st.integers(0, 3 * SMALL_BATCH_ROWS), elements=finite))
def test_both_paths_sum_as_numpy_does(values):
    positive, negative, squared = output_sums(values)
    assert positive >= 0
    assert negative >= 0
    assert math.isclose(positive - negative, float(values.sum()), rel_tol=1e-9, abs_tol=1e-3)
    assert math.isclose(squared, float(np.sum(values**2)), rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(positive, float(values[values > 0].sum()), rel_tol=1e-9, abs_tol=1e-3)
