"""Stream the WSIs of a run through the PCC kernel: per-WSI r, flags, co-moments and sampled spots."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ._errors import InputError
from ._progress import Progress
from ._spot_extras import SpotExtras
from .metrics.depth import genes_detected
from .metrics.pcc import MomentAccumulator, NonFiniteError, RowMatrix, pearson_from_moments

if TYPE_CHECKING:
    from .config import ScoreConfig
    from .io.align import GeneMap
    from .io.stream import WsiReader
    from .metrics.activity import ActivityPlan

logger = logging.getLogger(__name__)


@dataclass
class PerWsi:
    """What the streaming pass leaves (the array part of :class:`~gpc_bench.stats.WsiStats`).

    Attributes
    ----------
    r, flags
        ``(n_wsi, n_genes)`` Pearson r and flags (:data:`gpc_bench.metrics.pcc.FLAG_NAMES`).
    n, moments
        Spots per WSI, and ``(n_wsi, 7, n_genes)`` per-WSI moments (:data:`gpc_bench.stats.MOMENTS`):
        truth mean and M2, prediction mean and M2, the co-moment sum((x - mean_x)(y - mean_y)), and
        the co-moments of truth and of prediction with the depth covariate d.
    depth
        ``(n_wsi, 2)``: mean and M2 of d per WSI.
    activity
        ``(n_wsi, 7, n_sets)`` moments of the pathway activities
        (:func:`gpc_bench.metrics.activity.activity_moments`), or ``None`` without a plan.
    moran, activity_moran, domains
        Moran's I of the genes and of the activity maps, and the tissue-domain agreement
        (:mod:`gpc_bench._spot_extras`), or ``None`` when not asked for.
    spot_pred, spot_truth, spot_labels
        The sampled spots' profiles and cancer types (``cluster="spot"`` only).
    warnings
        From the scale check of the first WSI.
    """

    r: np.ndarray
    flags: np.ndarray
    n: np.ndarray
    moments: np.ndarray
    depth: np.ndarray
    activity: np.ndarray | None = None
    moran: np.ndarray | None = None
    activity_moran: np.ndarray | None = None
    domains: np.ndarray | None = None
    spot_pred: list = field(default_factory=list)
    spot_truth: list = field(default_factory=list)
    spot_labels: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def score_wsis(
    reader: WsiReader, gmap: GeneMap, n_cols: tuple[int, int], *, cfg: ScoreConfig, threads: int, kernel: str,
    depth: np.ndarray | None = None, plan: ActivityPlan | None = None, coords: np.ndarray | None = None,
    annotation: np.ndarray | None = None,
) -> PerWsi:  # fmt: skip
    """Run the kernel over every piece of ``reader`` (:class:`gpc_bench.io.stream.WsiReader`).

    Parameters
    ----------
    reader
        The WSIs, block by block; a WSI's blocks arrive in row order.
    gmap
        Gene alignment (:func:`gpc_bench.io.align.align_genes`): the columns to pair.
    n_cols
        Columns of the truth and prediction matrices.
    cfg
        The run's :class:`~gpc_bench.config.ScoreConfig` (constant predictions, log1p, clustering).
    threads, kernel
        Kernel threads and ``"numba"`` or ``"numpy"``.
    depth
        The depth covariate of every truth row (:func:`gpc_bench.metrics.depth.depth_source`), or
        ``None``: log1p of the genes detected in each truth row, counted here.
    plan
        An :class:`~gpc_bench.metrics.activity.ActivityPlan`: also the pathway activities' moments.
    coords
        Spot coordinates of every truth row (``--spatial``): also Moran's I of every gene.
    annotation
        A label of every truth row (``--domain-key``): domains scored against it too.
    """
    cluster, cluster_spots = cfg.cluster, cfg.cluster_spots
    wsis = reader.wsis
    n_wsi, n_genes = len(wsis), len(gmap.genes)
    r, flags = np.full((n_wsi, n_genes), np.nan), np.zeros((n_wsi, n_genes), np.int8)
    out = PerWsi(r, flags, np.zeros(n_wsi, np.int64), np.zeros((n_wsi, 7, n_genes)), np.zeros((n_wsi, 2)))
    if plan is not None:
        out.activity = np.zeros((n_wsi, 7, plan.n_sets))
    if coords is not None:
        out.moran = np.full((n_wsi, 2, n_genes), np.nan)
    if coords is not None and plan is not None:
        out.activity_moran = np.full((n_wsi, 2, plan.n_sets), np.nan)
    if cfg.domains:
        from .metrics.domains import DOMAINS

        out.domains = np.full((n_wsi, len(DOMAINS)), np.nan)
    extras = SpotExtras(cfg, gmap, plan, coords, annotation, kernel)
    per_wsi_spots = int(np.ceil(cluster_spots / n_wsi)) if cluster == "spot" else 0
    with Progress(n_wsi, "WSIs scored", logger) as progress:
        _stream(reader, out, progress, gmap, n_cols, cfg, threads, kernel, per_wsi_spots, depth, extras)
    return out


def _stream(
    reader, out: PerWsi, progress, gmap, n_cols, cfg, threads, kernel, per_wsi_spots, depth, extras
) -> None:
    """The loop over blocks: moments per WSI into ``out``, one progress step per WSI."""
    constant_prediction, truth_log1p, target = cfg.constant_prediction, cfg.truth_log1p, cfg.truth_normalize
    cluster, seed = cfg.cluster, cfg.seed
    n_wsi, n_genes = len(reader.wsis), len(gmap.genes)
    for piece in reader:
        k, w, x, y = piece.k, piece.wsi, piece.x, piece.y
        if piece.first:
            t0 = time.perf_counter()
            if k == 0:
                out.warnings += _check_scale(x, y, truth_log1p or target is not None)
            acc = MomentAccumulator(
                *n_cols,
                x_cols=gmap.truth_cols,
                y_cols=gmap.pred_cols,
                log1p_x=truth_log1p,
                threads=threads,
                kernel=kernel,
            )
            if cluster == "spot":
                rng = np.random.default_rng([seed, k])
                take = np.sort(rng.choice(w.n_spots, min(w.n_spots, per_wsi_spots), replace=False))
                parts_truth, parts_pred = [], []
            extras.start(w.n_spots)
        if depth is not None:
            d = depth[w.truth_rows[piece.r0 : piece.r1]]
        else:  # before normalising: a gene detected stays detected
            d = np.log1p(genes_detected(x, kernel, threads))
        if target is not None:
            x = normalize_log1p(x, target)
        acc.add(x, y, d)
        if extras.any:
            extras.add(piece.r0, piece.r1, x, y, d)
        if cluster == "spot":  # the sampled spots among this piece's rows
            sel = take[(take >= piece.r0) & (take < piece.r1)] - piece.r0
            parts_truth.append(np.take(_some_rows(x, sel), gmap.truth_cols, axis=1))
            parts_pred.append(np.take(_some_rows(y, sel), gmap.pred_cols, axis=1))
        # release the piece now: the loop variables would otherwise keep it (and its mapping)
        # alive until the next piece is bound, after the reader has started on the one after
        last = piece.last
        del x, y, piece
        if not last:
            continue
        m = _moments(acc, w, gmap, truth_log1p)
        out.r[k], out.flags[k] = pearson_from_moments(m, constant_prediction)
        out.n[k] = m.n
        out.moments[k] = (m.mean_x, m.m2_x, m.mean_y, m.m2_y, m.cov_xy, m.cov_xd, m.cov_yd)
        out.depth[k] = (m.mean_d, m.m2_d)
        if extras.any:
            extras.finish(k, out, m, w)
        if cluster == "spot":
            xs = np.concatenate(parts_truth)
            out.spot_truth.append(np.log1p(xs) if truth_log1p else xs)  # normalised ones already are
            out.spot_pred.append(np.concatenate(parts_pred))
            out.spot_labels += [w.cancer_type] * len(take)
        progress.step(
            "[%d/%d] %s (%s): %d spots, %d genes, %.2fs",
            k + 1,
            n_wsi,
            w.sample_id,
            w.cancer_type,
            w.n_spots,
            n_genes,
            time.perf_counter() - t0,
        )


def _moments(acc: MomentAccumulator, w, gmap, truth_log1p: bool):
    """The WSI's moments; a NaN or infinity becomes an error naming the file, WSI and gene."""
    try:
        return acc.result()
    except NonFiniteError as err:
        role = "truth" if err.which == "x" else "predictions"
        hint = (
            "negative values give NaN under --truth-log1p"
            if err.which == "x" and truth_log1p
            else "replace or remove non-finite values before scoring"
        )
        raise InputError(
            f"NaN or infinite value in {role} for sample {w.sample_id!r}, gene {gmap.genes[err.column]!r}",
            hint,
        ) from None


def normalize_log1p(x: np.ndarray, target: float) -> np.ndarray:
    """Scale each row (spot) to ``target`` total counts over all its genes, then log1p, in place.

    A spot with no counts stays 0. Computed in float64, stored back in ``x``'s float32.
    """
    total = x.sum(axis=1, dtype=np.float64)
    scale = np.divide(target, total, out=np.zeros_like(total), where=total > 0)
    np.log1p(x * scale[:, None], out=x, casting="unsafe")
    return x


def _check_scale(x, y, truth_counts: bool) -> list[str]:
    """Sanity warnings from the first WSI: counts where log1p is expected, or the reverse."""
    found = []

    def sample(a):
        n = a.shape[0]
        v = _some_rows(a, np.unique(np.linspace(0, n - 1, min(n, 64)).astype(np.int64))).ravel()
        return v[:: max(1, v.size // 100_000)]

    xs, ys = sample(x), sample(y)
    if xs.size == 0:
        return found
    integral = bool(np.all(xs == np.round(xs)))
    if not truth_counts and integral and xs.max() > 30:
        found.append(
            f"measured expression looks like raw counts (integers up to {float(xs.max()):g}); pass "
            "--truth-normalize 1e4 (total counts per spot, then log1p) or --truth-log1p (log1p only)"
        )
    if truth_counts and (not integral or xs.min() < 0):
        found.append("the truth was to be treated as counts, but its values are not non-negative integers")
    if ys.size and bool(np.all(ys == np.round(ys))) and ys.max() > 30:
        found.append(
            f"predictions look like raw counts (integers up to {float(ys.max()):g}); "
            "gpc-bench expects predicted log1p expression"
        )
    for w in found:
        logger.warning("%s", w)
    return found


def _some_rows(a, index) -> np.ndarray:
    """Rows ``index`` of an array or a RowMatrix, as a 2-D array."""
    return a.rows(index) if isinstance(a, RowMatrix) else a[index]
