"""The spot-level extras of the streaming pass: pathway activities, Moran's I and tissue domains.

Each needs a whole WSI at once (its activity maps, its spot graph, its clusters), so the pass keeps
the WSI's rows here as they stream by, and at the WSI's last block turns them into the WSI's
statistics; memory stays bounded by the largest WSI. :class:`SpotExtras` does nothing (and holds
nothing) when none is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ._errors import InputError
from .metrics.activity import ActivityPlan, activity_moments, mean_z_activities, transposed_columns
from .metrics.pcc import as_array

if TYPE_CHECKING:
    from ._per_wsi import PerWsi
    from .config import ScoreConfig
    from .io.align import GeneMap, Wsi
    from .io.h5ad import Source
    from .metrics.pcc import Moments, RowMatrix


@dataclass
class SpotExtras:
    """What the extras of one run need, and the current WSI's buffers.

    Attributes
    ----------
    cfg
        The run's :class:`~gpc_bench.config.ScoreConfig` (``activity``, ``spatial``, ``domains``).
    gmap
        The gene alignment: truth and prediction columns of the scored genes.
    plan
        The pathways' genes and weights (``activity``), else ``None``.
    coords
        Spot coordinates of every truth row (``spatial``), else ``None``.
    annotation
        The annotation of every truth row (``domain_key``), else ``None``.
    kernel
        ``"numba"`` or ``"numpy"`` (the mean-z activity kernel).
    """

    cfg: ScoreConfig
    gmap: GeneMap
    plan: ActivityPlan | None = None
    coords: np.ndarray | None = None
    annotation: np.ndarray | None = None
    kernel: str = "numba"

    def __post_init__(self) -> None:
        act = self.cfg.activity
        if self.cfg.domains:
            from .metrics.domains import check_method

            check_method(self.cfg.domains)
        self.mean_z = act == "mean-z"
        self.full = bool(self.cfg.spatial or self.cfg.domains or act in ("ulm", "aucell"))
        self.net = None
        if act in ("ulm", "aucell"):  # decoupler's net, once per run (and decoupler checked now)
            from .metrics.activity_decoupler import network

            self.net = network(self.plan)
        if self.mean_z:  # the truth and prediction columns of the genes in any pathway
            self.act_cols = (self.gmap.truth_cols[self.plan.cols], self.gmap.pred_cols[self.plan.cols])
        # columns in file order (the common case): a slice copies 5x faster than a gather
        self.full_cols = tuple(_as_slice(c) for c in (self.gmap.truth_cols, self.gmap.pred_cols))

    @property
    def any(self) -> bool:
        return self.plan is not None or self.full

    def start(self, n_spots: int) -> None:
        """Buffers for a WSI of ``n_spots`` spots."""
        n_genes = len(self.gmap.genes)
        if self.mean_z:  # genes x spots: the activity kernel reads contiguous spot vectors
            self.act_x = np.empty((len(self.plan.cols), n_spots), np.float32)
            self.act_y = np.empty((len(self.plan.cols), n_spots), np.float32)
        if self.plan is not None:
            self.act_d = np.empty(n_spots)
        if self.full:  # the whole WSI at the scored genes
            self.full_x = np.empty((n_spots, n_genes), np.float32)
            self.full_y = np.empty((n_spots, n_genes), np.float32)

    def add(
        self, r0: int, r1: int, x: np.ndarray | RowMatrix, y: np.ndarray | RowMatrix, d: np.ndarray
    ) -> None:
        """Rows ``r0:r1`` of the WSI: truth ``x`` (normalised, not yet log1p under ``truth_log1p``),
        predictions ``y``, depth covariate ``d``."""
        if self.mean_z:
            transposed_columns(as_array(x), self.act_cols[0], self.act_x, r0)
            transposed_columns(as_array(y), self.act_cols[1], self.act_y, r0)
        if self.plan is not None:
            self.act_d[r0:r1] = d
        if self.full:
            self.full_x[r0:r1] = _columns(as_array(x), self.full_cols[0])
            self.full_y[r0:r1] = _columns(as_array(y), self.full_cols[1])

    def finish(self, k: int, out: PerWsi, m: Moments, w: Wsi) -> None:
        """The WSI's statistics into row ``k`` of ``out`` (:class:`~gpc_bench._per_wsi.PerWsi`),
        given its moments ``m`` and the :class:`~gpc_bench.io.align.Wsi` ``w``; buffers released."""
        cfg = self.cfg
        if self.full and cfg.truth_log1p:
            np.log1p(self.full_x, out=self.full_x)
        graph = None
        if self.coords is not None:
            from .metrics.spatial import knn_graph, morans_i

            graph = knn_graph(self.coords[w.truth_rows])
            out.moran[k] = morans_i(self.full_x, graph), morans_i(self.full_y, graph)
        if self.plan is not None:
            ax, ay = self._activities(m)
            out.activity[k], act_moran = activity_moments(ax, ay, self.act_d, graph)
            if act_moran is not None:
                out.activity_moran[k] = act_moran
        if cfg.domains:
            from .metrics.domains import wsi_domains

            labels = None if self.annotation is None else self.annotation[w.truth_rows]
            var = m.m2_x / max(m.n, 1)  # the streamed moments: no pass over the WSI's matrix
            out.domains[k] = wsi_domains(
                self.full_x, self.full_y, cfg.domains, cfg.seed, cfg.domain_clusters, labels, var
            )
        for name in ("act_x", "act_y", "act_d", "full_x", "full_y"):
            self.__dict__.pop(name, None)

    def _activities(self, m: Moments) -> tuple[np.ndarray, np.ndarray]:
        """``(n_sets, spots)`` measured and predicted activities of the WSI."""
        if self.mean_z:
            c = self.plan.cols
            if self.cfg.truth_log1p:  # a negative count gives NaN here and the clear error above
                with np.errstate(invalid="ignore"):
                    np.log1p(self.act_x, out=self.act_x)
            return mean_z_activities(
                self.plan, self.act_x, self.act_y, (m.mean_x[c], m.m2_x[c]), (m.mean_y[c], m.m2_y[c]),
                self.kernel,
            )  # fmt: skip
        from .metrics.activity_decoupler import decoupler_activity

        return (
            decoupler_activity(self.cfg.activity, self.full_x, self.plan, self.net),
            decoupler_activity(self.cfg.activity, self.full_y, self.plan, self.net),
        )


def _as_slice(cols: np.ndarray) -> slice | np.ndarray:
    """``cols`` as a slice when they are consecutive and ascending, else themselves."""
    cols = np.asarray(cols)
    if len(cols) and cols[-1] - cols[0] == len(cols) - 1 and bool(np.all(np.diff(cols) == 1)):
        return slice(int(cols[0]), int(cols[-1]) + 1)
    return cols


def _columns(a: np.ndarray, cols: slice | np.ndarray) -> np.ndarray:
    """The columns ``cols`` of ``a``: a view for a slice, else ``np.take`` (a fancy index is up to
    15x slower on wide rows)."""
    return a[:, cols] if isinstance(cols, slice) else np.take(a, cols, axis=1)


def spot_coordinates(truth: Source) -> np.ndarray:
    """The truth's spot coordinates (``obsm["spatial"]``, 2 columns) for ``--spatial``."""
    xy = truth.obsm("spatial")
    if xy is None:
        raise InputError(
            "--spatial needs spot coordinates: the truth has no obsm['spatial']",
            "add each spot's (x, y) as obsm['spatial'] (HEST .h5ad files carry them)",
        )
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] < 2 or not np.isfinite(xy[:, :2]).all():
        raise InputError(
            f"obsm['spatial'] must be finite (x, y) per spot, got shape {xy.shape}",
            "give pixel or array coordinates, two columns",
        )
    return xy[:, :2]


def spot_annotation(truth: Source, key: str) -> np.ndarray:
    """The truth's obs column ``key`` (a label per spot; missing values stay missing) for
    ``--domain-key``."""
    col = truth.obs_column(key)
    if col is None:
        raise InputError(
            f"--domain-key {key!r}: the truth has no obs column {key!r}",
            "give the obs column holding each spot's annotation (e.g. pathologist regions)",
        )
    col = np.asarray(col, dtype=object)
    if col.ndim != 1:
        raise InputError(f"--domain-key {key!r}: obs[{key!r}] is not one label per spot")
    return col
