"""The fused PCC kernels: one pass over both float32 matrices, five float64 accumulators per gene.

Compiled with numba (cached on disk after the first use).  They compute exactly what
``pcc._block_sums`` computes with numpy: sums of the values shifted by the first row, their
squares and cross products, but read each input element once instead of ten numpy passes.

Both matrices are given as a flat buffer plus the element offset of every row
(:class:`gpc_bench.metrics.pcc.RowMatrix`), so rows can come from an in-memory array, a
memory-mapped file (contiguous or chunked HDF5 storage) or a permuted spot order alike.
"""

from __future__ import annotations

import numba
import numpy as np

_OPTS = {"cache": True, "nogil": True, "fastmath": False, "boundscheck": False}


@numba.njit(inline="always", **_OPTS)
def _pack(x0, y0, sx, sy, sxx, syy, sxy):  # pragma: no cover - compiled
    out = np.empty((7, x0.shape[0]))
    out[0] = x0
    out[1] = y0
    out[2] = sx
    out[3] = sy
    out[4] = sxx
    out[5] = syy
    out[6] = sxy
    return out


@numba.njit(inline="always", **_OPTS)
def _accumulate(k, vx, vy, x0, y0, sx, sy, sxx, syy, sxy):  # pragma: no cover - compiled
    dx = vx - x0[k]
    dy = vy - y0[k]
    sx[k] += dx
    sy[k] += dy
    sxx[k] += dx * dx
    syy[k] += dy * dy
    sxy[k] += dx * dy


@numba.njit(**_OPTS)
def block_sums_contiguous(xbuf, xoff, xa, ybuf, yoff, ya, w, log1p_x):  # pragma: no cover - compiled
    """Shifted sums of the columns ``[xa, xa + w)`` of x and ``[ya, ya + w)`` of y.

    ``xbuf``/``ybuf`` are flat buffers and ``xoff``/``yoff`` the offsets of each row's first
    column in them.  Returns ``(7, w)``: first-row shifts x0, y0, then sums of dx, dy, dx*dx,
    dy*dy, dx*dy, the layout of ``pcc._block_sums``.  Contiguous column ranges keep the inner
    loop free of gathers so it vectorises.
    """
    n = xoff.shape[0]
    x0 = np.empty(w)
    y0 = np.empty(w)
    for k in range(w):
        v = np.float64(xbuf[xoff[0] + xa + k])
        x0[k] = np.log1p(v) if log1p_x else v
        y0[k] = np.float64(ybuf[yoff[0] + ya + k])
    sx, sy, sxx, syy, sxy = np.zeros(w), np.zeros(w), np.zeros(w), np.zeros(w), np.zeros(w)
    for i in range(n):
        xr = xbuf[xoff[i] + xa : xoff[i] + xa + w]
        yr = ybuf[yoff[i] + ya : yoff[i] + ya + w]
        for k in range(w):
            vx = np.float64(xr[k])
            if log1p_x:  # loop-invariant: LLVM unswitches it out of the loop
                vx = np.log1p(vx)
            _accumulate(k, vx, np.float64(yr[k]), x0, y0, sx, sy, sxx, syy, sxy)
    return _pack(x0, y0, sx, sy, sxx, syy, sxy)


@numba.njit(**_OPTS)
def block_sums_gather(xbuf, xoff, xcols, ybuf, yoff, ycols, log1p_x):  # pragma: no cover - compiled
    """As :func:`block_sums_contiguous`, for the columns ``xcols`` of x and ``ycols`` of y."""
    n = xoff.shape[0]
    w = xcols.shape[0]
    x0 = np.empty(w)
    y0 = np.empty(w)
    for k in range(w):
        v = np.float64(xbuf[xoff[0] + xcols[k]])
        x0[k] = np.log1p(v) if log1p_x else v
        y0[k] = np.float64(ybuf[yoff[0] + ycols[k]])
    sx, sy, sxx, syy, sxy = np.zeros(w), np.zeros(w), np.zeros(w), np.zeros(w), np.zeros(w)
    for i in range(n):
        bx = xoff[i]
        by = yoff[i]
        for k in range(w):
            vx = np.float64(xbuf[bx + xcols[k]])
            if log1p_x:
                vx = np.log1p(vx)
            _accumulate(k, vx, np.float64(ybuf[by + ycols[k]]), x0, y0, sx, sy, sxx, syy, sxy)
    return _pack(x0, y0, sx, sy, sxx, syy, sxy)
