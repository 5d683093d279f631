"""Streaming variance and variance levels against numpy and pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gpc_bench.metrics.variance import VarianceAccumulator, assign_levels, level_thresholds


def test_streaming_merge_equals_global_variance():
    rng = np.random.default_rng(2)
    blocks = [rng.gamma(2, 1 + k, (int(rng.integers(1, 90)), 50)) for k in range(9)]
    acc = VarianceAccumulator(50)
    for b in blocks:
        acc.add(len(b), b.mean(0), ((b - b.mean(0)) ** 2).sum(0))
    allx = np.concatenate(blocks)
    np.testing.assert_allclose(acc.variance(), allx.var(0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(acc.variance(ddof=0), allx.var(0), rtol=1e-12)


def test_quantile_levels_match_qcut():
    rng = np.random.default_rng(3)
    v = rng.lognormal(0, 2, 1001)
    t = level_thresholds(v, 10, "quantile")
    levels = assign_levels(v, t)
    np.testing.assert_array_equal(levels, pd.qcut(v, 10, labels=False) + 1)
    assert np.bincount(levels)[1:].tolist() == [101, 100, 100, 100, 100, 100, 100, 100, 100, 100]


def test_zero_and_nan_variance_get_no_level():
    v = np.array([0.0, np.nan, 1.0, 2.0, 3.0, 4.0])
    t = level_thresholds(v, 2, "quantile")
    assert t.tolist() == [2.5]
    assert assign_levels(v, t).tolist() == [0, 0, 1, 1, 2, 2]


def test_log_levels_equal_width():
    v = 10.0 ** np.array([-3, -2.5, -1, 0, 0.5, 1])
    t = level_thresholds(v, 4, "log")
    np.testing.assert_allclose(np.log10(t), [-2.0, -1.0, 0.0])
    assert assign_levels(v, t).tolist() == [1, 1, 2, 3, 4, 4]


def test_bad_method_and_empty():
    with pytest.raises(ValueError, match="positive"):
        level_thresholds(np.zeros(4))
    with pytest.raises(ValueError, match="quantile"):
        level_thresholds(np.ones(4), method="bogus")
