"""Pathway activity per spot, and the pathway activity correlation (PAC) of measured and predicted.

GPC asks whether a model predicts a pathway's genes one by one; PAC asks whether it reproduces the
pathway's *activity* across the tissue: where hypoxia or EMT is high on the slide. The activity
(``mean-z``) of pathway p at spot s is the mean over the pathway's panel genes of each gene
z-scored within its WSI (population SD; a gene constant in the WSI contributes 0), computed the
same way on measured and on predicted expression::

    a_p(s) = (1 / k_p) sum_{g in p} (x_sg - mean_g) / sd_g

For all pathways at once that is one sparse product, ``A = Z P`` with ``P`` the gene x pathway
membership scaled by ``1 / k_p`` (never a loop over pathways). The streaming pass keeps the WSI's
columns of pathway genes (memory bounded by the largest WSI), and at the WSI's end computes the
activities in row chunks and their moments (:data:`ACTIVITY`): those are the per-WSI statistics
(``wsi_stats/activity.parquet``), from which PAC per WSI is the Pearson r of the two activity maps,
and the depth-adjusted PAC the partial correlation given the depth covariate
(:func:`gpc_bench.metrics.depth.depth_correlations`). Both are declared
:class:`~gpc_bench.metrics._declare.PathwayMetric` s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ._declare import PathwayMetric
from ._pool import deviations, pooled

if TYPE_CHECKING:
    import scipy.sparse as sp

    from ..config import ScoreConfig
    from ..stats import WsiStats
    from .pathway import Membership

#: per-(WSI, pathway) activity moments, in the order of :attr:`gpc_bench.stats.WsiStats.activity`
ACTIVITY = (
    "act_truth_mean", "act_truth_m2", "act_pred_mean", "act_pred_m2", "act_comoment",
    "act_truth_depth_comoment", "act_pred_depth_comoment",
)  # fmt: skip
#: genes turned into z-scores at a time on the SciPy route (bounds the float64 temporaries)
CHUNK_ROWS = 512


@dataclass(frozen=True)
class ActivityPlan:
    """Which panel genes the activities read and how they combine.

    Attributes
    ----------
    cols
        Sorted panel indices of the genes in any pathway.
    weights
        ``(len(cols), n_sets)`` sparse CSR matrix, ``1 / k_p`` where gene ``cols[i]`` is in pathway p
        (``k_p``: its panel genes); ``by_pathway`` its transpose, CSR by pathway.
    """

    cols: np.ndarray
    weights: sp.csr_matrix
    by_pathway: sp.csr_matrix | None = None

    @classmethod
    def from_membership(cls, memb: Membership, n_sets: int) -> ActivityPlan:
        """The plan of a :class:`~gpc_bench.metrics.pathway.Membership`."""
        import scipy.sparse as sp

        cols, inverse = np.unique(memb.gene, return_inverse=True)
        k = np.bincount(memb.pathway, minlength=n_sets).astype(np.float64)
        w = 1.0 / k[memb.pathway]
        weights = sp.csr_matrix((w, (inverse, memb.pathway)), shape=(len(cols), n_sets))
        return cls(cols.astype(np.int64), weights, weights.T.tocsr())

    @property
    def n_sets(self) -> int:
        return self.weights.shape[1]


#: spots transposed at a time into the genes x spots layout (cache-friendly blocks)
TRANSPOSE_ROWS = 1024


def transposed_columns(x: np.ndarray, cols: np.ndarray, out: np.ndarray, r0: int) -> None:
    """Write the columns ``cols`` of the rows ``x`` (a block of a WSI starting at row ``r0``) into
    ``out`` (genes x spots, float32), a block of rows at a time."""
    n = x.shape[0]
    for i in range(0, n, TRANSPOSE_ROWS):
        j = min(n, i + TRANSPOSE_ROWS)
        out[:, r0 + i : r0 + j] = np.take(x[i:j], cols, axis=1).T


def activity(
    xt: np.ndarray, mean: np.ndarray, sd: np.ndarray, plan: ActivityPlan, kernel: str = "numba"
) -> np.ndarray:
    """``(n_sets, spots)`` mean-z activities of ``xt`` (plan genes x spots), given each gene's WSI
    mean and population SD (a gene with SD 0 contributes 0). ``kernel`` ``"numba"``: one compiled
    pass over contiguous spot vectors; ``"numpy"`` (or numba missing): SciPy's sparse product on
    float64 blocks of genes. Both sum in float64."""
    scale = np.divide(1.0, sd, out=np.zeros_like(sd, dtype=np.float64), where=sd > 0)
    out = np.zeros((plan.n_sets, xt.shape[1]))
    if kernel == "numba":
        try:
            from ._pcc_numba import activity_t
        except ImportError:  # pragma: no cover - numba missing or broken
            kernel = "numpy"
        else:
            wt = plan.by_pathway
            activity_t(xt, np.asarray(mean, np.float64), scale, wt.indptr, wt.indices, wt.data, out)
            return out
    w = plan.weights
    for g0 in range(0, xt.shape[0], CHUNK_ROWS):
        z = np.asarray(xt[g0 : g0 + CHUNK_ROWS], dtype=np.float64) - mean[g0 : g0 + CHUNK_ROWS, None]
        z *= scale[g0 : g0 + CHUNK_ROWS, None]
        out += w[g0 : g0 + CHUNK_ROWS].T @ z
    return out


def mean_z_activities(
    plan: ActivityPlan,
    xt: np.ndarray,
    yt: np.ndarray,
    truth_moments: tuple[np.ndarray, np.ndarray],
    pred_moments: tuple[np.ndarray, np.ndarray],
    kernel: str = "numba",
) -> tuple[np.ndarray, np.ndarray]:
    """``(n_sets, spots)`` mean-z activities of one WSI, measured and predicted.

    ``xt``, ``yt``: the WSI's truth and prediction at the plan's genes, genes x spots
    (:func:`transposed_columns`); ``truth_moments``, ``pred_moments``: ``(mean, M2)`` of the plan's
    genes over the WSI (from the moment accumulator, float64).
    """
    n = xt.shape[1]
    ax = activity(xt, truth_moments[0], np.sqrt(truth_moments[1] / n), plan, kernel)
    ay = activity(yt, pred_moments[0], np.sqrt(pred_moments[1] / n), plan, kernel)
    return ax, ay


def activity_moments(
    ax: np.ndarray, ay: np.ndarray, d: np.ndarray, graph: sp.csr_matrix | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(7, n_sets)`` moments of one WSI's measured and predicted activities ``ax``, ``ay``
    (``(n_sets, spots)``, overwritten) with the depth covariate ``d`` (:data:`ACTIVITY`), and with
    ``graph`` (the WSI's spot weights, :func:`gpc_bench.metrics.spatial.knn_graph`) the
    ``(2, n_sets)`` Moran's I of the two activity maps (else ``None``)."""
    mx, my = ax.mean(1), ay.mean(1)
    ax -= mx[:, None]
    ay -= my[:, None]
    dc = np.asarray(d, dtype=np.float64) - float(np.mean(d))
    moments = np.stack([mx, (ax * ax).sum(1), my, (ay * ay).sum(1), (ax * ay).sum(1), ax @ dc, ay @ dc])
    moran = None
    if graph is not None:
        from .spatial import morans_i

        moran = np.stack([morans_i(ax.T, graph), morans_i(ay.T, graph)])
    return moments, moran


def _unit_activity(stats, groups):
    """``m2_x, m2_y, c_xy, c_xd, c_yd, m2_d`` of the activities per WSI, or pooled per group."""
    a, n = stats.activity, stats.n_spots.astype(np.float64)
    if groups is None:
        return a[:, 1], a[:, 3], a[:, 4], a[:, 5], a[:, 6], stats.depth[:, 1]
    groups = np.asarray(groups, dtype=object)
    parts = []
    for g in sorted(set(groups.tolist())):
        sel = groups == g
        w = n[sel][:, None]
        mx, m2x, my, m2y, cxy, cxd, cyd = (a[sel, i] for i in range(7))
        md, m2d = stats.depth[sel, 0][:, None], stats.depth[sel, 1][:, None]
        dx, dy, dd = deviations(w, mx), deviations(w, my), deviations(w, md)
        parts.append(
            (
                pooled(m2x, w, dx, dx), pooled(m2y, w, dy, dy), pooled(cxy, w, dx, dy),
                pooled(cxd, w, dx, dd), pooled(cyd, w, dy, dd), float(pooled(m2d, w, dd, dd)[0]),
            )
        )  # fmt: skip
    return (*(np.stack([p[i] for p in parts]) for i in range(5)), np.array([p[5] for p in parts]))


def pac(stats: WsiStats, config: ScoreConfig, groups: Sequence | None = None) -> np.ndarray:
    """PAC per WSI (or pooled group) and pathway: the Pearson r over spots of measured and
    predicted activity; NaN where the measured activity is constant, the constant-prediction value
    where only the predicted one is."""
    m2x, m2y, cxy, *_ = _unit_activity(stats, groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.clip(cxy / np.sqrt(m2x * m2y), -1.0, 1.0)
    fill = 0.0 if config.constant_prediction == "zero" else np.nan
    return np.where(m2x > 0, np.where(m2y > 0, r, fill), np.nan)


def pac_depth_adjusted(stats: WsiStats, config: ScoreConfig, groups: Sequence | None = None) -> np.ndarray:
    """The partial correlation of measured and predicted activity given the depth covariate."""
    from .depth import depth_correlations

    return depth_correlations(
        *_unit_activity(stats, groups), config.constant_prediction, with_baseline=False
    )[0]


def activity_moran_truth(
    stats: WsiStats, config: ScoreConfig | None = None, groups: Sequence | None = None
) -> np.ndarray:
    """Moran's I of the measured activity map per WSI and pathway (``--activity --spatial``)."""
    return _activity_moran(stats, groups, 0)


def activity_moran_pred(
    stats: WsiStats, config: ScoreConfig | None = None, groups: Sequence | None = None
) -> np.ndarray:
    """Moran's I of the predicted activity map per WSI and pathway."""
    return _activity_moran(stats, groups, 1)


def _activity_moran(stats, groups, side: int) -> np.ndarray:
    if groups is not None:  # a spot graph is per WSI: pooled units have none
        return np.full((len(set(groups)), stats.activity.shape[2]), np.nan)
    return stats.activity_moran[:, side]


PAC = PathwayMetric("pac", "PAC", needs="activity", compute=pac)
ACTIVITY_MORAN_TRUTH = PathwayMetric(
    "activity_moran_truth", "Moran's I\nactivity, measured", needs="activity+spatial",
    compute=activity_moran_truth, family="spatial",
)  # fmt: skip
ACTIVITY_MORAN_PRED = PathwayMetric(
    "activity_moran_pred", "Moran's I\nactivity, predicted", needs="activity+spatial",
    compute=activity_moran_pred, family="spatial",
)  # fmt: skip
PAC_DEPTH_ADJUSTED = PathwayMetric(
    "pac_depth_adjusted", "PAC\ndepth-adjusted", needs="activity+depth", compute=pac_depth_adjusted
)
