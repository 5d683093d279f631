"""Streaming gene variance (Chan et al. merge) and variance levels."""

from __future__ import annotations

from typing import Literal

import numpy as np

VarianceBins = Literal["quantile", "log"]


class VarianceAccumulator:
    """Merge per-WSI (count, mean, M2) into the variance over all spots.

    Parameters
    ----------
    n_genes
        Number of genes (columns).
    """

    def __init__(self, n_genes: int) -> None:
        self.n = 0
        self.mean = np.zeros(n_genes)
        self.m2 = np.zeros(n_genes)

    def add(self, n: int, mean: np.ndarray, m2: np.ndarray) -> None:
        """Merge a block of ``n`` rows with column means ``mean`` and sums of squared deviations ``m2``."""
        if n == 0:
            return
        if self.n == 0:
            self.n, self.mean, self.m2 = n, mean.astype(np.float64).copy(), m2.astype(np.float64).copy()
            return
        total = self.n + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta * delta * (self.n * n / total)
        self.n = total

    def variance(self, ddof: int = 1) -> np.ndarray:
        """Variance per gene (NaN when fewer than ``ddof + 1`` rows)."""
        if self.n <= ddof:
            return np.full(len(self.mean), np.nan)
        return self.m2 / (self.n - ddof)


def level_thresholds(
    variances: np.ndarray, n_levels: int = 10, method: VarianceBins = "quantile"
) -> np.ndarray:
    """The ``n_levels - 1`` inner thresholds that cut genes into variance levels.

    Only genes with a positive, finite variance take part: a gene that never
    varies cannot be scored, so it gets no level.

    ``quantile`` cuts at the quantiles of the variances (deciles for 10
    levels, numpy's linear interpolation); ``log`` cuts log10(variance) into
    equal-width bins between its minimum and maximum.
    """
    v = np.asarray(variances, dtype=np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    if len(v) == 0:
        raise ValueError("no gene has a positive variance")
    if method == "quantile":
        return np.quantile(v, np.arange(1, n_levels) / n_levels)
    if method == "log":
        lv = np.log10(v)
        return 10.0 ** np.linspace(lv.min(), lv.max(), n_levels + 1)[1:-1]
    raise ValueError(f"variance bins must be 'quantile' or 'log', not {method!r}")


def assign_levels(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Level 1..len(thresholds)+1 for each value; bins are right-closed, (t[k-1], t[k]].

    Values that are not positive and finite get level 0 (no level).
    """
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values) & (values > 0)
    levels = np.zeros(len(values), dtype=np.int64)
    levels[ok] = 1 + np.searchsorted(thresholds, values[ok], side="left")
    return levels
