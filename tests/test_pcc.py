"""The PCC kernel against scipy.stats.pearsonr, column by column."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr

from gpc_bench.metrics.pcc import (
    PREDICTION_CONSTANT,
    TRUTH_CONSTANT,
    NonFiniteError,
    column_moments,
    pearson_columns,
    pearson_from_moments,
)


def reference(x, y, mode="zero"):
    out = []
    for g in range(x.shape[1]):
        a, b = x[:, g].astype(np.float64), y[:, g].astype(np.float64)
        if np.all(a == a[0]):
            out.append(np.nan)
        elif np.all(b == b[0]):
            out.append(0.0 if mode == "zero" else np.nan)
        else:
            out.append(pearsonr(a, b)[0])
    return np.array(out)


@pytest.fixture(autouse=True, params=["numba", "numpy"])
def kernel(request, monkeypatch):
    """Every test runs on both kernels: the fused numba one and the pure-numpy fallback."""
    import gpc_bench.metrics.pcc as pcc
    from gpc_bench.metrics.pcc import kernel_name

    if kernel_name(choice=request.param) != request.param:
        pytest.skip("numba is not installed")
    # the metric functions take kernel= (default "auto"); here every call gets this test's kernel
    real = pcc.kernel_name
    def forced(n=None, *, load=True, choice="auto"):
        return real(n, load=load, choice=request.param if choice == "auto" else choice)

    forced.__wrapped__ = real
    monkeypatch.setattr(pcc, "kernel_name", forced)
    return request.param


def test_kernels_agree(data, monkeypatch):
    pytest.importorskip("numba", reason="numba is not installed: there is only one kernel")
    x, y = data
    cols = np.random.default_rng(3).permutation(x.shape[1])
    got = {}
    for k in ("numba", "numpy"):
        got[k] = (
            pearson_columns(x, y, kernel=k),
            pearson_columns(x, y, x_cols=cols, y_cols=cols, log1p_x=True, kernel=k),
        )
    for a, b in zip(got["numba"], got["numpy"], strict=True):
        assert np.array_equal(np.isnan(a), np.isnan(b))
        assert np.nanmax(np.abs(a - b)) < 1e-12


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    n, g = 257, 3000  # odd sizes: partial row chunks and gene blocks
    x = np.log1p(rng.poisson(rng.gamma(0.5, 2.0, g), (n, g))).astype(np.float32)
    y = (0.6 * x + rng.normal(0, 0.7, (n, g))).astype(np.float32)
    x[:, 5] = 0.0
    x[:, 6] = 3.25
    y[:, 7] = 1.0
    y[:, 5] = 1.0  # both constant: truth wins
    x[:, 8] = 1e4 + rng.normal(0, 1e-3, n)  # large mean, small variance: conditioning
    return x, y


@pytest.mark.parametrize("mode", ["zero", "exclude"])
@pytest.mark.parametrize("threads", [1, 2])
def test_matches_pearsonr(data, mode, threads):
    x, y = data
    r = pearson_columns(x, y, mode, threads=threads, gene_block=512)
    ref = reference(x, y, mode)
    np.testing.assert_array_equal(np.isnan(r), np.isnan(ref))
    np.testing.assert_allclose(r, ref, rtol=0, atol=1e-11)


def test_flags(data):
    x, y = data
    r, flags = pearson_from_moments(column_moments(x, y))
    assert flags[5] == TRUTH_CONSTANT and flags[6] == TRUTH_CONSTANT
    assert flags[7] == PREDICTION_CONSTANT and r[7] == 0.0
    tc = np.ptp(x, axis=0) == 0
    pc = (np.ptp(y, axis=0) == 0) & ~tc
    np.testing.assert_array_equal(flags, np.where(tc, TRUTH_CONSTANT, np.where(pc, PREDICTION_CONSTANT, 0)))


def test_column_selection_and_log1p(data):
    x, y = data
    rng = np.random.default_rng(1)
    xc, yc = rng.permutation(x.shape[1])[:700], rng.permutation(y.shape[1])[:700]
    x = x.copy()
    x[:, 8] = 1.0  # expm1(1e4) would overflow
    counts = np.expm1(x).round().astype(np.float32)
    r = pearson_columns(counts, y, x_cols=xc, y_cols=yc, log1p_x=True, gene_block=256)
    ref = reference(np.log1p(counts.astype(np.float64))[:, xc], y[:, yc])
    np.testing.assert_allclose(r, ref, atol=1e-10)


def test_thread_count_does_not_change_bits(data):
    x, y = data
    a = pearson_columns(x, y, threads=1, gene_block=300)
    b = pearson_columns(x, y, threads=2, gene_block=300)
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("which", ["x", "y"])
def test_non_finite_raises(data, bad, which):
    x, y = (a.copy() for a in data)
    (x if which == "x" else y)[17, 1234] = bad
    with pytest.raises(NonFiniteError) as err:
        column_moments(x, y)
    assert err.value.which == which and err.value.column == 1234


def test_tiny_inputs():
    one = np.ones((1, 3), dtype=np.float32)
    r, flags = pearson_from_moments(column_moments(one, one))
    assert np.isnan(r).all() and (flags == TRUTH_CONSTANT).all()
    x = np.array([[0, 1], [1, 1]], dtype=np.float32)
    y = np.array([[0, 2], [3, 5]], dtype=np.float32)
    np.testing.assert_allclose(pearson_columns(x, y), [1.0, np.nan])
    empty = column_moments(np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32))
    assert empty.n == 0


def test_moments_give_mean_and_variance(data):
    x, y = data
    m = column_moments(x, y)
    np.testing.assert_allclose(m.mean_x, x.astype(np.float64).mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.m2_x / (m.n - 1), x.astype(np.float64).var(0, ddof=1), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("order", ["x_shuffled", "y_shuffled", "both_shuffled", "ascending_gaps"])
def test_column_order_does_not_change_bits(data, order, monkeypatch):
    """Unordered selections are gathered in row chunks; every gene still adds up its rows in
    the same order, so the sums equal those of the same columns laid out contiguously."""
    from gpc_bench.metrics import pcc

    monkeypatch.setattr(pcc, "_GATHER_ROWS", 50)  # 257 rows: five full chunks and a partial one
    x, y = data
    rng = np.random.default_rng(7)
    shuffled, ascending = rng.permutation(x.shape[1])[:2000], np.sort(rng.permutation(x.shape[1])[:2000])
    xc = shuffled if order in ("x_shuffled", "both_shuffled") else ascending
    yc = rng.permutation(shuffled) if order in ("y_shuffled", "both_shuffled") else ascending
    for log1p in (False, True):
        xs = np.abs(x) if log1p else x
        got = column_moments(xs, y, x_cols=xc, y_cols=yc, log1p_x=log1p, gene_block=300, threads=2)
        want = column_moments(
            np.ascontiguousarray(xs[:, xc]), np.ascontiguousarray(y[:, yc]), log1p_x=log1p, gene_block=300
        )
        for field in ("x0", "y0", "sx", "sy", "sxx", "syy", "sxy"):
            assert getattr(got, field).tobytes() == getattr(want, field).tobytes(), field


@pytest.mark.parametrize("cols", ["all", "shuffled"])
def test_rows_fed_in_chunks(data, cols, kernel, monkeypatch):
    """A WSI streamed in row chunks gives the sums of one pass: the same bits with numba (each
    gene adds up its rows in the same order), the same values up to rounding with numpy."""
    from gpc_bench.metrics import pcc

    monkeypatch.setattr(pcc, "_GATHER_ROWS", 20)  # chunks of 37 rows do not line up with gathers
    x, y = data
    x = np.abs(x)
    xc = None if cols == "all" else np.random.default_rng(3).permutation(x.shape[1])
    for log1p in (False, True):
        kw = {"x_cols": xc, "log1p_x": log1p, "gene_block": 300, "threads": 2}
        want = column_moments(x, y, **kw)
        acc = pcc.MomentAccumulator(x.shape[1], y.shape[1], **kw)
        for r0 in range(0, x.shape[0], 37):
            xm = pcc.RowMatrix.from_array(x[r0 : r0 + 37]) if r0 % 2 else x[r0 : r0 + 37]  # mixed forms
            acc.add(xm, y[r0 : r0 + 37])
        acc.add(x[:0], y[:0])  # an empty chunk adds nothing
        got = acc.result()
        assert got.n == want.n == x.shape[0]
        for field in ("x0", "y0", "sx", "sy", "sxx", "syy", "sxy"):
            a, b = getattr(got, field), getattr(want, field)
            if kernel == "numba" or field in ("x0", "y0"):
                assert a.tobytes() == b.tobytes(), field
            else:
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9, err_msg=field)


def test_accumulator_checks_its_input(data):
    from gpc_bench.metrics.pcc import MomentAccumulator

    x, y = data
    acc = MomentAccumulator(x.shape[1], y.shape[1])
    with pytest.raises(ValueError, match="row counts differ"):
        acc.add(x[:5], y[:4])
    with pytest.raises(ValueError, match="columns"):
        acc.add(x[:5, :10], y[:5])
    with pytest.raises(ValueError, match="differ in length"):
        MomentAccumulator(x.shape[1], y.shape[1], x_cols=[0, 1], y_cols=[0])
    bad = x[:9].copy()
    bad[8, 3] = np.nan  # in the second chunk: found when the sums are read
    acc.add(x[:4], y[:4])
    acc.add(bad[4:], y[4:9])
    with pytest.raises(NonFiniteError) as err:
        acc.result()
    assert (err.value.which, err.value.column) == ("x", 3)


def test_kernel_name_without_loading(monkeypatch):
    from gpc_bench.metrics import pcc
    from gpc_bench.metrics.pcc import NUMBA_MIN_ELEMENTS

    kernel_name = pcc.kernel_name.__wrapped__  # the real one, not this file's forced kernel

    assert kernel_name(NUMBA_MIN_ELEMENTS - 1, load=False) == "numpy"
    assert kernel_name(NUMBA_MIN_ELEMENTS, load=False) == "numba"
    assert kernel_name(NUMBA_MIN_ELEMENTS, load=False, choice="numpy") == "numpy"
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # numba not installed
    assert kernel_name(NUMBA_MIN_ELEMENTS, load=False) == "numpy"
