"""The fused PCC kernels: one pass over both float32 matrices, five float64 accumulators per gene.

Compiled with numba (cached on disk after the first use).  They compute exactly what
``pcc._block_sums`` computes with numpy: sums of the values shifted by the first row, their
squares and cross products, but read each input element once instead of ten numpy passes.

Both matrices are given as a flat buffer plus the element offset of every row
(:class:`gpc_bench.metrics.pcc.RowMatrix`), so rows can be read in place in any order.

The accumulators ``acc`` (``(9, w)`` float64: shifts x0 and y0, then the sums of dx, dy,
dx*dx, dy*dy, dx*dy, dx*dd and dy*dd, ``dd`` the shifted per-row covariate) are read and written
in place, so a block of genes can be fed row
chunk by row chunk and still add up rows in exactly the order of a single pass.
"""

from __future__ import annotations

import numba
import numpy as np

_OPTS = {"cache": True, "nogil": True, "fastmath": False, "boundscheck": False}


@numba.njit(inline="always", **_OPTS)
def _accumulate(k, vx, vy, dd, x0, y0, sx, sy, sxx, syy, sxy, sxd, syd):  # pragma: no cover
    dx = vx - x0[k]
    dy = vy - y0[k]
    sx[k] += dx
    sy[k] += dy
    sxx[k] += dx * dx
    syy[k] += dy * dy
    sxy[k] += dx * dy
    sxd[k] += dx * dd
    syd[k] += dy * dd


@numba.njit(**_OPTS)
def accumulate_contiguous(xbuf, xoff, xa, ybuf, yoff, ya, log1p_x, d, acc):  # pragma: no cover
    """Add the rows at ``xoff``/``yoff`` (covariate ``d``, shifted) to ``acc``, for columns
    ``[xa, xa + w)`` of x and ``[ya, ya + w)`` of y (``w = acc.shape[1]``).

    Contiguous column ranges keep the inner loop free of gathers so it vectorises.  The sums are
    copied into fresh local arrays first, which LLVM knows do not alias the inputs.
    """
    w = acc.shape[1]
    x0, y0 = acc[0].copy(), acc[1].copy()
    sx, sy, sxx, syy, sxy = acc[2].copy(), acc[3].copy(), acc[4].copy(), acc[5].copy(), acc[6].copy()
    sxd, syd = acc[7].copy(), acc[8].copy()
    for i in range(xoff.shape[0]):
        xr = xbuf[xoff[i] + xa : xoff[i] + xa + w]
        yr = ybuf[yoff[i] + ya : yoff[i] + ya + w]
        dd = d[i]
        for k in range(w):
            vx = np.float64(xr[k])
            if log1p_x:  # loop-invariant: LLVM unswitches it out of the loop
                vx = np.log1p(vx)
            _accumulate(k, vx, np.float64(yr[k]), dd, x0, y0, sx, sy, sxx, syy, sxy, sxd, syd)
    acc[2], acc[3], acc[4], acc[5], acc[6], acc[7], acc[8] = sx, sy, sxx, syy, sxy, sxd, syd


@numba.njit(**_OPTS)
def accumulate_gather(xbuf, xoff, xcols, ybuf, yoff, ycols, log1p_x, d, acc):  # pragma: no cover
    """As :func:`accumulate_contiguous`, for the columns ``xcols`` of x and ``ycols`` of y.

    Fast when both are ascending (the reads stream through each row); for columns in an
    unrelated order, gather the rows first (:func:`gather_rows`).
    """
    w = acc.shape[1]
    x0, y0 = acc[0].copy(), acc[1].copy()
    sx, sy, sxx, syy, sxy = acc[2].copy(), acc[3].copy(), acc[4].copy(), acc[5].copy(), acc[6].copy()
    sxd, syd = acc[7].copy(), acc[8].copy()
    for i in range(xoff.shape[0]):
        bx = xoff[i]
        by = yoff[i]
        dd = d[i]
        for k in range(w):
            vx = np.float64(xbuf[bx + xcols[k]])
            if log1p_x:
                vx = np.log1p(vx)
            _accumulate(k, vx, np.float64(ybuf[by + ycols[k]]), dd, x0, y0, sx, sy, sxx, syy, sxy, sxd, syd)
    acc[2], acc[3], acc[4], acc[5], acc[6], acc[7], acc[8] = sx, sy, sxx, syy, sxy, sxd, syd


@numba.njit(**_OPTS)
def gather_rows(buf, offsets, cols, out):  # pragma: no cover - compiled
    """``out[i, k] = buf[offsets[i] + cols[k]]``: one row at a time, so each row is read from
    cache whatever the column order."""
    for i in range(offsets.shape[0]):
        base = offsets[i]
        for k in range(cols.shape[0]):
            out[i, k] = buf[base + cols[k]]


@numba.njit(**_OPTS)
def count_positive(buf, offsets, n_cols, out):  # pragma: no cover - compiled
    """``out[i]`` = the number of values > 0 in the row at ``offsets[i]`` (``n_cols`` long)."""
    for i in range(offsets.shape[0]):
        base = offsets[i]
        c = 0
        for k in range(n_cols):
            if buf[base + k] > 0:
                c += 1
        out[i] = c


@numba.njit(**_OPTS)
def activity_t(xt, mean, scale, indptr, index, weight, out):  # pragma: no cover
    """Mean-z activities, transposed: ``out[p, i] += sum_j weight_j scale_g (xt[g, i] - mean_g)``
    over pathway p's genes g = ``index[j]`` (CSR rows ``indptr``); ``xt`` genes x spots, float32,
    read as contiguous spot vectors; float64 sums."""
    n = xt.shape[1]
    for p in range(len(indptr) - 1):
        o = out[p]
        for j in range(indptr[p], indptr[p + 1]):
            g = index[j]
            c = weight[j] * scale[g]
            if c == 0.0:
                continue
            m = mean[g]
            row = xt[g]
            for i in range(n):
                o[i] += c * (row[i] - m)
