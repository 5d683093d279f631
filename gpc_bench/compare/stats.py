"""Resampling and tests: WSI bootstrap weights, weighted means, Wilcoxon, Benjamini-Hochberg."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bootstrap_weights(cancer_types: Sequence[str], n_boot: int, seed: int) -> np.ndarray:
    """Multiplicity of each WSI in each bootstrap draw, ``(n_boot, n_wsi)``.

    WSIs are resampled with replacement *within each cancer type* (a stratified bootstrap), so
    every draw keeps the cohort's composition and the macro average stays defined.
    """
    types = np.asarray(cancer_types, dtype=object)
    rng = np.random.default_rng(seed)
    w = np.zeros((n_boot, len(types)), dtype=np.float64)
    for t in sorted(set(types.tolist())):
        idx = np.flatnonzero(types == t)
        draws = rng.integers(0, len(idx), size=(n_boot, len(idx)))
        rows = np.repeat(np.arange(n_boot), len(idx))
        np.add.at(w, (rows, idx[draws.ravel()]), 1.0)
    return w


def weighted_mean(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mean of ``x`` (``(..., n_wsi)``, NaN = undefined) under each weight row of ``w``.

    Returns ``(..., n_boot)``; NaN where every WSI with weight is undefined.
    """
    ok = np.isfinite(x)
    num = np.where(ok, x, 0.0) @ w.T
    den = ok.astype(np.float64) @ w.T
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def nanmean(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mean over finite entries without warnings; NaN where none."""
    ok = np.isfinite(x)
    n = ok.sum(axis=axis)
    s = np.where(ok, x, 0.0).sum(axis=axis)
    out = np.full(np.shape(s), np.nan)
    np.divide(s, n, out=out, where=n > 0)
    return out


def percentile_ci(draws: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the finite bootstrap draws (NaN when there are none)."""
    d = np.asarray(draws, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    lo, hi = np.quantile(d, [a, 1 - a])
    return float(lo), float(hi)


def wilcoxon(x: np.ndarray, y: np.ndarray) -> tuple[float, float, int]:
    """Paired two-sided Wilcoxon signed-rank test on the pairs where both are finite.

    Returns (statistic, p, n_pairs); NaN statistic and p when fewer than one non-zero
    difference exists (identical inputs).
    """
    from scipy import stats

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    d = x[ok] - y[ok]
    if not np.any(d != 0):
        return float("nan"), float("nan"), int(ok.sum())
    res = stats.wilcoxon(x[ok], y[ok], zero_method="wilcox", alternative="two-sided")
    return float(res.statistic), float(res.pvalue), int(ok.sum())


def bh_adjust(p: np.ndarray | Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values; NaN stays NaN and is not counted."""
    from scipy import stats

    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return out
