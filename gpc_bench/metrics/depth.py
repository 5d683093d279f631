"""Sequencing depth as a confound: the depth-adjusted correlation and the depth baseline.

Within a WSI every gene's measured expression rises and falls with the spot's sequencing depth,
and dense, cellular tissue (visible on H&E) is sequenced deeper, so a model can score well by
predicting depth alone. Two per-WSI, per-gene numbers say how much of a correlation that explains:

- the **depth baseline** ``r_xd``: the correlation of the truth x with the depth covariate d, that
  is, what a prediction of depth alone scores (it needs no prediction);
- the **depth-adjusted** correlation: the partial correlation of x and the prediction y given d,
  ``(r_xy - r_xd r_yd) / sqrt((1 - r_xd^2)(1 - r_yd^2))``, what remains beyond depth.

Both come from co-moments with d that the streaming pass accumulates next to the others
(:class:`gpc_bench.metrics.pcc.Moments`), so they cost no second pass. The covariate is chosen by
:func:`depth_source` and computed by :func:`spot_depth` (docs/metrics.md, "Confounds").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ._declare import GeneMetric
from ._pool import deviations, pooled
from .pcc import OK, PREDICTION_CONSTANT, TRUTH_CONSTANT

if TYPE_CHECKING:
    from ..config import ScoreConfig
    from ..stats import WsiStats
    from ._rows import RowMatrix

#: |r| with 1 - r^2 at most this is "1 within rounding": a truth or prediction that is an affine
#: function of depth (float32 storage leaves 1 - r^2 ~ 1e-13 at worst)
COLLINEAR_TOL = 1e-9
#: scanpy's name for the counts per spot (``sc.pp.calculate_qc_metrics``)
TOTAL_COUNTS = "total_counts"


def depth_correlations(
    m2_x: np.ndarray,
    m2_y: np.ndarray,
    cov_xy: np.ndarray,
    cov_xd: np.ndarray,
    cov_yd: np.ndarray,
    m2_d: np.ndarray,
    constant_prediction: str = "zero",
    with_baseline: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Depth-adjusted r, depth baseline r and flags of the adjusted r, from co-moments.

    Parameters
    ----------
    m2_x, m2_y, cov_xy, cov_xd, cov_yd
        ``(n_units, n_genes)`` sums of squared deviations of truth and prediction and their
        co-moments with each other and with the depth covariate d.
    m2_d
        ``(n_units,)`` sum of squared deviations of d.
    constant_prediction
        ``"zero"`` or ``"exclude"``: what a prediction that is constant, or a function of depth
        alone, scores (as for a constant prediction in the raw r).
    with_baseline
        Also compute the baseline (else ``None`` is returned for it).

    Returns
    -------
    adjusted, baseline, flags
        ``adjusted``: NaN where the truth is constant or an affine function of d; the
        constant-prediction value where the prediction is constant or an affine function of d; r
        itself where d is constant within the unit. ``baseline``: ``r_xd``; NaN for a constant truth;
        the constant-prediction value where d is constant (a depth-only prediction is then constant).
        ``flags``: :data:`~gpc_bench.metrics.pcc.OK`, ``TRUTH_CONSTANT`` or ``PREDICTION_CONSTANT``
        for the adjusted value.
    """
    m2_d = np.asarray(m2_d, dtype=np.float64)[:, None]
    fill = 0.0 if constant_prediction == "zero" else np.nan
    varied_d = m2_d[:, 0] > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        r_xy = _r(cov_xy, m2_x, m2_y)
        r_xd = _r(cov_xd, m2_x, m2_d)
        r_yd = _r(cov_yd, m2_y, m2_d)
        r_xd[~varied_d] = 0.0  # d constant in the unit: nothing to adjust for
        r_yd[~varied_d] = 0.0
        rest_x, rest_y = 1.0 - r_xd * r_xd, 1.0 - r_yd * r_yd
        adjusted = r_xy - r_xd * r_yd
        adjusted /= np.sqrt(rest_x * rest_y)
        np.clip(adjusted, -1.0, 1.0, out=adjusted)
    truth_const = (m2_x == 0) | (rest_x <= COLLINEAR_TOL)
    pred_const = ~truth_const & ((m2_y == 0) | (rest_y <= COLLINEAR_TOL))
    flags = np.full(adjusted.shape, OK, np.int8)
    flags[truth_const] = TRUTH_CONSTANT
    flags[pred_const] = PREDICTION_CONSTANT
    adjusted[truth_const] = np.nan
    adjusted[pred_const] = fill
    base = depth_baseline(m2_x, cov_xd, m2_d[:, 0], constant_prediction) if with_baseline else None
    return adjusted, base, flags


def _r(cov, m2_a, m2_b) -> np.ndarray:
    """cov / sqrt(m2_a m2_b), clipped to [-1, 1] (NaN where a variance is 0)."""
    r = m2_a * m2_b
    np.sqrt(r, out=r)
    np.divide(cov, r, out=r)
    return np.clip(r, -1.0, 1.0, out=r)


def depth_baseline(
    m2_x: np.ndarray, cov_xd: np.ndarray, m2_d: np.ndarray, constant_prediction: str = "zero"
) -> np.ndarray:
    """``r_xd``, what a prediction of depth alone scores: NaN for a constant truth, and the
    constant-prediction value where d is constant (the depth-only prediction is then constant)."""
    m2_d = np.asarray(m2_d, dtype=np.float64)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        r_xd = np.clip(cov_xd / np.sqrt(m2_x * m2_d), -1.0, 1.0)
    fill = 0.0 if constant_prediction == "zero" else np.nan
    return np.where(m2_x == 0, np.nan, np.where(m2_d > 0, r_xd, fill))


def pooled_comoments(n: np.ndarray, moments: np.ndarray, depth: np.ndarray, groups: Sequence) -> tuple:
    """The co-moments of each group of WSIs pooled over their spots (Chan's parallel formula).

    ``moments`` is ``(n_wsi, 7, n_genes)`` (:data:`gpc_bench.stats.MOMENTS`), ``depth``
    ``(n_wsi, 2)`` (mean and M2 of d). Returns the sorted group names and the ``(n_groups, ...)``
    arrays ``m2_x, m2_y, cov_xy, cov_xd, cov_yd, m2_d`` that :func:`depth_correlations` takes.
    """
    groups = np.asarray(groups, dtype=object)
    names = np.array(sorted(set(groups.tolist())), dtype=object)
    parts = []
    for g in names:
        sel = groups == g
        w = n[sel].astype(np.float64)[:, None]
        mx, m2x, my, m2y, cxy, cxd, cyd = (moments[sel, i] for i in range(7))
        md, m2d = depth[sel, 0][:, None], depth[sel, 1][:, None]
        dx, dy, dd = deviations(w, mx), deviations(w, my), deviations(w, md)
        parts.append(
            (
                pooled(m2x, w, dx, dx), pooled(m2y, w, dy, dy), pooled(cxy, w, dx, dy),
                pooled(cxd, w, dx, dd), pooled(cyd, w, dy, dd), float(pooled(m2d, w, dd, dd)[0]),
            )
        )  # fmt: skip
    arrays = [np.stack([p[i] for p in parts]) for i in range(5)]
    return names, (*arrays, np.array([p[5] for p in parts]))


def depth_source(
    obs_column: Callable[[str], np.ndarray | None], depth_key: str | None, role: str = "truth"
) -> tuple[dict, np.ndarray | None]:
    """The per-spot depth covariate a truth file gives, and how it is recorded in ``summary.json``.

    An explicit ``depth_key`` (``--depth-key``) wins and is used as given; else scanpy's
    ``total_counts``, as ``log1p``; else (values ``None``) the number of genes detected (> 0) in
    each truth row, as ``log1p``, counted while streaming (:func:`genes_detected`).

    Parameters
    ----------
    obs_column
        ``name -> values or None`` (a source's ``obs_column``).
    depth_key
        The obs column to use, or ``None``.
    """
    from .._errors import InputError

    if depth_key is not None:
        info, values = {"source": "obs", "column": depth_key, "transform": "none"}, obs_column(depth_key)
        if values is None:
            raise InputError(
                f"--depth-key {depth_key!r} is not a column of the {role}'s obs",
                "name a numeric obs column of the truth file (e.g. log1p_total_counts), or leave it out",
            )
    else:
        values = obs_column(TOTAL_COUNTS)
        if values is None:
            return {"source": "genes_detected", "column": None, "transform": "log1p"}, None
        info = {"source": "obs", "column": TOTAL_COUNTS, "transform": "log1p"}
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f'{role} obs["{info["column"]}"] is not numeric, so it cannot be the depth covariate',
            "name a numeric column with --depth-key",
        ) from None
    if info["transform"] == "log1p":
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.log1p(values)
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(
            f'{role} obs["{info["column"]}"] gives {int(bad.sum())} spot(s) no finite depth '
            f"(NaN, infinite{', or negative counts' if info['transform'] == 'log1p' else ''}), "
            f"e.g. row {int(np.flatnonzero(bad)[0])}",
            "fix the column, or name another one with --depth-key",
        )
    return info, values


def describe(source: dict) -> str:
    """One line: where the depth covariate came from."""
    if source["source"] == "obs":
        col = f'obs["{source["column"]}"]'
        return f"log1p({col})" if source["transform"] == "log1p" else col
    return "log1p(genes detected per spot in the truth)"


def genes_detected(x: np.ndarray | RowMatrix, kernel: str = "numpy", threads: int = 1) -> np.ndarray:
    """Per row of ``x`` (array or :class:`~gpc_bench.metrics.pcc.RowMatrix`), the number of values
    above 0, as float64; with ``kernel="numba"`` a compiled loop reads the rows in place, on
    ``threads`` threads (it releases the GIL)."""
    from ._rows import RowMatrix, as_array

    if kernel == "numba":
        from . import _pcc_numba as nb

        m = x if isinstance(x, RowMatrix) else RowMatrix.from_array(x)
        out = np.empty(m.shape[0], np.int64)
        parts = np.array_split(np.arange(m.shape[0]), max(1, min(threads, m.shape[0] // 64)))

        def count(rows):
            if len(rows):
                part = out[rows[0] : rows[-1] + 1]
                nb.count_positive(m.buf, m.offsets[rows[0] : rows[-1] + 1], m.n_cols, part)

        if len(parts) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(parts)) as pool:
                list(pool.map(count, parts))
        else:
            count(parts[0])
        return out.astype(np.float64)
    x = as_array(x)
    out = np.empty(x.shape[0], np.float64)
    step = max(1, (8 << 20) // max(1, x.shape[1]))  # ~8 M booleans at a time
    for i in range(0, x.shape[0], step):
        out[i : i + step] = np.count_nonzero(x[i : i + step] > 0, axis=1)
    return out


def _unit_comoments(stats, groups) -> tuple:
    """``m2_x, m2_y, cov_xy, cov_xd, cov_yd, m2_d`` per WSI, or pooled per group (sorted)."""
    if groups is not None:
        return pooled_comoments(stats.n_spots, stats.moments, stats.depth, groups)[1]
    m = stats.moments
    return m[:, 1], m[:, 3], m[:, 4], m[:, 5], m[:, 6], stats.depth[:, 1]


def adjusted_r(stats: WsiStats, config: ScoreConfig, groups: Sequence | None = None) -> np.ndarray:
    """Depth-adjusted r per WSI (or pooled group) and gene (:func:`depth_correlations`)."""
    return depth_correlations(
        *_unit_comoments(stats, groups), config.constant_prediction, with_baseline=False
    )[0]


def baseline_r(stats: WsiStats, config: ScoreConfig, groups: Sequence | None = None) -> np.ndarray:
    """The depth baseline ``r_xd`` per WSI (or pooled group) and gene: truth and depth only."""
    m2_x, _, _, cov_xd, _, m2_d = _unit_comoments(stats, groups)
    return depth_baseline(m2_x, cov_xd, m2_d, config.constant_prediction)


DEPTH_ADJUSTED = GeneMetric(
    "depth_adjusted", "depth-\nadjusted", "r_depth_adjusted", needs="moments+depth", compute=adjusted_r
)
DEPTH_BASELINE = GeneMetric(
    "depth_baseline", "depth\nbaseline", "r_depth", needs="truth+depth", compute=baseline_r
)
