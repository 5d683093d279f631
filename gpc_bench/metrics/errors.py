"""Error and agreement metrics from the co-moments already kept: MSE, R², Lin's CCC and RVD.

Correlation ignores level and scale: a prediction off by a constant, or at a tenth of the true
spread, keeps r = 1. These four, per WSI and gene, say how far the values themselves are from the
truth (as TRIPLEX and HEST-Benchmark report them), from the per-WSI moments of the one streaming
pass (no second pass; :class:`gpc_bench.metrics.pcc.Moments`). With n spots, means ``m``, sums of
squared deviations ``M2`` and the co-moment ``C``:

- ``MSE = (M2x + M2y - 2 C) / n + (mx - my)^2`` (the mean over spots of ``(x - y)^2``);
- ``R^2 = 1 - SSE / SST`` with ``SSE = n MSE`` and ``SST = M2x`` (NaN for a constant truth);
- Lin's concordance ``CCC = 2 cov / (var x + var y + (mx - my)^2)``, population moments
  (``cov = C / n``, ``var = M2 / n``); NaN only when both are constant and equal;
- ``RVD = ((var y - var x) / var x)^2``, the relative variance difference (NaN for a constant
  truth).

Each is declared as a :class:`~gpc_bench.metrics._declare.GeneMetric` and reduced exactly as r is
(pathway means, HVG means, headline means; docs/metrics.md). Under a pooled protocol the moments
are pooled per unit with Chan's formula first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ._declare import GeneMetric
from ._pool import deviations, pooled

if TYPE_CHECKING:
    from ..stats import WsiStats


def unit_moments(stats: WsiStats, groups: Sequence | None = None) -> tuple[np.ndarray, ...]:
    """``n (n_units, 1), mean_x, m2_x, mean_y, m2_y, c_xy`` per WSI, or pooled per group (sorted)."""
    n, m = stats.n_spots.astype(np.float64), stats.moments
    if groups is None:
        return n[:, None], m[:, 0], m[:, 1], m[:, 2], m[:, 3], m[:, 4]
    groups = np.asarray(groups, dtype=object)
    out = []
    for g in sorted(set(groups.tolist())):
        sel = groups == g
        w = n[sel][:, None]
        mx, m2x, my, m2y, cxy = (m[sel, i] for i in range(5))
        dx, dy = deviations(w, mx), deviations(w, my)
        total = w.sum()
        out.append(
            (
                np.array([total]), (w * mx).sum(0) / total, pooled(m2x, w, dx, dx),
                (w * my).sum(0) / total, pooled(m2y, w, dy, dy), pooled(cxy, w, dx, dy),
            )
        )  # fmt: skip
    return tuple(np.stack([u[i] for u in out]) for i in range(6))


def _errors(n, mx, m2x, my, m2y, cxy) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        bias2 = (mx - my) ** 2
        mse = np.maximum((m2x + m2y - 2 * cxy) / n, 0.0) + bias2  # rounding never makes it negative
        vx, vy, cov = m2x / n, m2y / n, cxy / n
        denom = vx + vy + bias2
        return {
            "mse": mse,
            "r2": np.where(m2x > 0, 1.0 - n * mse / m2x, np.nan),
            "ccc": np.where(denom > 0, 2 * cov / denom, np.nan),
            "rvd": np.where(vx > 0, ((vy - vx) / vx) ** 2, np.nan),
        }


def _metric(name: str):
    def compute(stats, config, groups=None) -> np.ndarray:
        return _errors(*unit_moments(stats, groups))[name]

    compute.__name__ = f"{name}_per_wsi"
    compute.__doc__ = f"{name.upper()} per WSI (or pooled group) and gene, from the moments."
    return compute


MSE = GeneMetric(
    "mse", "MSE", "mse", needs="moments", compute=_metric("mse"), higher_is_better=False, family="error"
)
R2 = GeneMetric("r2", "R²", "r2", needs="moments", compute=_metric("r2"), family="error")
CCC = GeneMetric("ccc", "CCC", "ccc", needs="moments", compute=_metric("ccc"), family="error")
RVD = GeneMetric(
    "rvd", "RVD", "rvd", needs="moments", compute=_metric("rvd"), higher_is_better=False, family="error"
)
