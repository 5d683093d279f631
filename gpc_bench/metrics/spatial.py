"""Spatial patterns: Moran's I of every gene, measured and predicted, on a k-nearest-neighbour graph.

A model that paints smooth blobs gets a high predicted Moran's I that does not match the measured
one; a model with the right values at shuffled positions gets a predicted I near 0. Per WSI, with
``--spatial``:

- the graph: each spot's ``k`` nearest other spots by Euclidean distance on ``obsm["spatial"]``
  (default ``k = 6``, a Visium spot's ring), binary weights row-standardised (``w_ij = 1/k``), so
  ``S0 = n``. Ties (regular ST and Visium grids put many spots at one distance) are broken
  deterministically: by distance rounded to 1e-9 of the WSI's coordinate scale, then by spot
  position in the truth file;
- Moran's I of gene g: ``I = (n / S0) (z' W z) / (z' z)`` with ``z`` the gene centred within the
  WSI; NaN for a gene constant in the WSI;
- three declared per-WSI metrics (:mod:`gpc_bench.metrics.registry`): ``spatial_recall``, the
  Pearson r across genes of measured and predicted I; ``moran_abs_diff``, their mean absolute
  difference; and ``svg_pcc``, the mean r over the WSI's top-:data:`N_SVG` spatially variable
  genes (by measured I).

The per-(WSI, gene) I are per-WSI statistics (``wsi_stats/gene_stats.parquet``: ``truth_moran``,
``pred_moran``). Tested against a loop over a brute-force neighbour search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._declare import WsiMetric

if TYPE_CHECKING:
    import scipy.sparse as sp

    from ..config import ScoreConfig
    from ..stats import WsiStats

#: neighbours per spot (a Visium spot's ring of six)
K_NEIGHBOURS = 6
#: spatially variable genes per WSI for ``svg_pcc``
N_SVG = 50
#: genes of a WSI turned into float64 at a time
CHUNK_GENES = 2048


def knn_graph(coords: np.ndarray, k: int = K_NEIGHBOURS) -> sp.csr_matrix:
    """``(n, n)`` CSR row-standardised weights of each spot's ``k`` nearest other spots (ties by
    rounded distance, then by index)."""
    import scipy.sparse as sp
    from scipy.spatial import cKDTree

    xy = np.asarray(coords, dtype=np.float64)
    n = len(xy)
    k = min(k, n - 1)
    if k < 1:
        return sp.csr_matrix((n, n))
    q = min(n, 2 * k + 1)  # enough candidates to break ties at the k-th distance by index
    dist, idx = cKDTree(xy).query(xy, k=q)
    dist, idx = np.atleast_2d(dist), np.atleast_2d(idx)
    scale = float(np.ptp(xy, axis=0).max()) or 1.0
    key = np.round(dist / scale, 9)
    key[idx == np.arange(n)[:, None]] = np.inf  # a spot is not its own neighbour
    order = np.lexsort((idx, key), axis=-1)[:, :k]  # per row: by rounded distance, then by index
    c = np.take_along_axis(idx, order, axis=1).ravel()
    r = np.repeat(np.arange(n), k)
    return sp.csr_matrix((np.full(len(r), 1.0 / k), (r, c)), shape=(n, n))


def morans_i(x: np.ndarray, w: sp.csr_matrix) -> np.ndarray:
    """Moran's I of each column of ``x`` (spots x genes) under row-standardised weights ``w``."""
    n = x.shape[0]
    s0 = float(w.sum())
    out = np.full(x.shape[1], np.nan)
    for g0 in range(0, x.shape[1], CHUNK_GENES):
        z = np.asarray(x[:, g0 : g0 + CHUNK_GENES], dtype=np.float64)
        z = z - z.mean(axis=0)
        den = (z * z).sum(axis=0)
        num = (z * (w @ z)).sum(axis=0)
        ok = den > 0  # a constant gene centres to exact zeros
        out[g0 : g0 + CHUNK_GENES][ok] = (n / s0) * num[ok] / den[ok]
    return out


def _pair(stats):
    return stats.moran[:, 0], stats.moran[:, 1]


def spatial_recall(stats: WsiStats, config: ScoreConfig | None = None) -> np.ndarray:
    """Per WSI, the Pearson r across genes of measured and predicted Moran's I."""
    t, p = _pair(stats)
    out = np.full(stats.n_wsi, np.nan)
    for k in range(stats.n_wsi):
        ok = np.isfinite(t[k]) & np.isfinite(p[k])
        if ok.sum() >= 3 and np.ptp(t[k][ok]) > 0 and np.ptp(p[k][ok]) > 0:
            out[k] = float(np.corrcoef(t[k][ok], p[k][ok])[0, 1])
    return out


def moran_abs_diff(stats: WsiStats, config: ScoreConfig | None = None) -> np.ndarray:
    """Per WSI, the mean over genes of |predicted I - measured I|."""
    t, p = _pair(stats)
    d = np.abs(p - t)
    ok = np.isfinite(d)
    n = ok.sum(axis=1)
    return np.where(n > 0, np.where(ok, d, 0.0).sum(axis=1) / np.maximum(n, 1), np.nan)


def svg_pcc(stats: WsiStats, config: ScoreConfig | None = None) -> np.ndarray:
    """Per WSI, the mean r over its top-:data:`N_SVG` genes by measured Moran's I (defined r only)."""
    t, _ = _pair(stats)
    out = np.full(stats.n_wsi, np.nan)
    for k in range(stats.n_wsi):
        cand = np.flatnonzero(np.isfinite(t[k]))
        top = cand[np.lexsort((cand, -t[k][cand]))][:N_SVG]
        r = stats.r[k, top]
        r = r[np.isfinite(r)]
        if len(r):
            out[k] = float(r.mean())
    return out


SPATIAL_RECALL = WsiMetric(
    "spatial_recall", "spatial\nrecall", needs="moran", compute=spatial_recall, family="spatial"
)
MORAN_ABS_DIFF = WsiMetric(
    "moran_abs_diff", "Moran's I\n|diff|", needs="moran", compute=moran_abs_diff, higher_is_better=False,
    family="spatial",
)  # fmt: skip
SVG_PCC = WsiMetric("svg_pcc", f"PCC top-{N_SVG}\nSVGs", needs="moran", compute=svg_pcc)
