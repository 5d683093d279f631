"""The fused PCC kernel: one pass over both float32 matrices, five float64 accumulators per gene.

Compiled with numba (cached on disk after the first use).  It computes exactly what
``pcc._block_sums`` computes with numpy: sums of the values shifted by the first row, their
squares and cross products, but reads each input element once instead of ten numpy passes.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, fastmath=False, boundscheck=False)
def block_sums_contiguous(x, y, xa, ya, w, log1p_x):  # pragma: no cover - compiled
    """Shifted sums of the columns ``[xa, xa + w)`` of ``x`` and ``[ya, ya + w)`` of ``y``.

    Returns ``(7, w)``: first-row shifts x0, y0, then sums of dx, dy, dx*dx, dy*dy, dx*dy, the
    layout of ``pcc._block_sums``.  Contiguous ranges keep the inner loop free of gathers so it
    vectorises; gathered columns are copied into contiguous blocks by the caller.
    """
    n = x.shape[0]
    out = np.zeros((7, w))
    x0 = np.empty(w)
    y0 = np.empty(w)
    for k in range(w):
        v = np.float64(x[0, xa + k])
        x0[k] = np.log1p(v) if log1p_x else v
        y0[k] = np.float64(y[0, ya + k])
    sx = np.zeros(w)
    sy = np.zeros(w)
    sxx = np.zeros(w)
    syy = np.zeros(w)
    sxy = np.zeros(w)
    for i in range(n):
        xr = x[i, xa : xa + w]
        yr = y[i, ya : ya + w]
        for k in range(w):
            vx = np.float64(xr[k])
            if log1p_x:  # loop-invariant: LLVM unswitches it out of the loop
                vx = np.log1p(vx)
            dx = vx - x0[k]
            dy = np.float64(yr[k]) - y0[k]
            sx[k] += dx
            sy[k] += dy
            sxx[k] += dx * dx
            syy[k] += dy * dy
            sxy[k] += dx * dy
    out[0] = x0
    out[1] = y0
    out[2] = sx
    out[3] = sy
    out[4] = sxx
    out[5] = syy
    out[6] = sxy
    return out
