"""Array-level metrics: pure functions, arrays in, arrays out, no I/O.

``gpc_bench.score`` composes exactly these; they can be called on arrays a user already holds:

- :func:`gene_pcc`: per-gene Pearson r of one WSI's measured vs predicted spots x genes;
- :func:`gene_pcc_by_wsi`: the same for every WSI of stacked spots (a WSI x gene r matrix);
- :func:`membership`, :func:`pathway_scores`: the GPC reduction of an r matrix over gene sets;
- :func:`variance_levels`: variance levels of genes (or of pathways, given the gene thresholds);
- :func:`hvg_macro_micro`: HVG PCC averaged per cancer type (macro) and per WSI (micro).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._pool import deviations, pooled
from .hvg import macro_micro as hvg_macro_micro
from .hvg import top_variable
from .pathway import Membership, PathwayScores, membership, pathway_scores, pathway_wsi_scores
from .pcc import pearson_columns
from .variance import assign_levels, level_thresholds

__all__ = [
    "Membership",
    "PathwayScores",
    "assign_levels",
    "gene_pcc",
    "gene_pcc_by_wsi",
    "pooled_pcc",
    "hvg_macro_micro",
    "level_thresholds",
    "membership",
    "pathway_scores",
    "pathway_wsi_scores",
    "top_variable",
    "variance_levels",
]


def gene_pcc(truth: np.ndarray, pred: np.ndarray, constant_prediction: str = "zero") -> np.ndarray:
    """Pearson r of each gene over the spots of one WSI.

    Parameters
    ----------
    truth, pred
        ``(n_spots, n_genes)`` measured and predicted expression, rows and columns aligned.
    constant_prediction
        Where the truth varies but the prediction is constant: ``"zero"`` gives r = 0,
        ``"exclude"`` gives NaN. A constant truth always gives NaN.

    Returns
    -------
    numpy.ndarray
        ``(n_genes,)`` float64.
    """
    return pearson_columns(np.asarray(truth), np.asarray(pred), constant_prediction)


def gene_pcc_by_wsi(
    truth: np.ndarray, pred: np.ndarray, sample_ids: Sequence, constant_prediction: str = "zero"
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`gene_pcc` for every WSI of stacked spots.

    Parameters
    ----------
    truth, pred
        ``(n_spots, n_genes)``, rows aligned.
    sample_ids
        The WSI of each spot.

    Returns
    -------
    samples, r
        The WSIs (sorted) and the ``(n_wsi, n_genes)`` r matrix.
    """
    truth, pred = np.asarray(truth), np.asarray(pred)
    ids = np.asarray(sample_ids, dtype=object)
    samples = np.array(sorted(set(ids.tolist())), dtype=object)
    r = np.vstack([gene_pcc(truth[ids == s], pred[ids == s], constant_prediction) for s in samples])
    return samples, r


def variance_levels(
    variances: np.ndarray, n_levels: int = 10, method: str = "quantile"
) -> tuple[np.ndarray, np.ndarray]:
    """Cut genes into variance levels.

    Parameters
    ----------
    variances
        Per-gene variance over the test set.
    n_levels
        Number of levels.
    method
        ``"quantile"`` (equal-count, as ``pandas.qcut``) or ``"log"`` (equal-width in log10).

    Returns
    -------
    levels, thresholds
        Level 1..n_levels of each gene (0 for a gene that does not vary: no level), and the
        ``n_levels - 1`` inner thresholds (bins are right-closed). A pathway's level is
        ``assign_levels(its mean gene variance, thresholds)``.
    """
    thresholds = level_thresholds(variances, n_levels, method)
    return assign_levels(variances, thresholds), thresholds


def pooled_pcc(
    n: np.ndarray, moments: np.ndarray, groups: Sequence, constant_prediction: str = "zero"
) -> tuple[np.ndarray, np.ndarray]:
    """Gene r over all spots of each group of WSIs at once, merged from per-WSI moments.

    This is HEST-Benchmark's aggregation (one r per gene over the concatenated spots of a split),
    computed without a second pass: the co-moments of the WSIs are merged with Chan's formula.

    Parameters
    ----------
    n
        ``(n_wsi,)`` spots per WSI.
    moments
        ``(n_wsi, 5, n_genes)``: truth mean, truth M2, prediction mean, prediction M2 and the
        co-moment sum((x - mean_x)(y - mean_y)) of each WSI.
    groups
        The group (cancer type) of each WSI.
    constant_prediction
        As for :func:`gene_pcc`.

    Returns
    -------
    names, r
        The groups (sorted) and the ``(n_groups, n_genes)`` r matrix.
    """
    groups = np.asarray(groups, dtype=object)
    names = np.array(sorted(set(groups.tolist())), dtype=object)
    out = np.full((len(names), moments.shape[2]), np.nan)
    for k, g in enumerate(names):
        sel = groups == g
        w = n[sel].astype(np.float64)[:, None]
        mx, sxx, my, syy, sxy = (moments[sel, i] for i in range(5))
        dx, dy = deviations(w, mx), deviations(w, my)
        cxx, cyy, cxy = pooled(sxx, w, dx, dx), pooled(syy, w, dy, dy), pooled(sxy, w, dx, dy)
        const_x = (sxx == 0).all(0) & (dx == 0).all(0)
        const_y = (syy == 0).all(0) & (dy == 0).all(0)
        denom = np.sqrt(cxx * cyy)
        r = np.full(len(cxx), np.nan)
        ok = ~const_x & ~const_y & (denom > 0)
        r[ok] = np.clip(cxy[ok] / denom[ok], -1.0, 1.0)
        if constant_prediction == "zero":
            r[~const_x & const_y] = 0.0
        out[k] = r
    return names, out
