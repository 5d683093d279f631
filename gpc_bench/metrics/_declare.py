"""How a per-WSI metric is declared (:class:`WsiMetric`); the declarations are listed in
:mod:`gpc_bench.metrics.registry`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from ..config import ScoreConfig
    from ..stats import WsiStats

#: what a metric reads from the per-WSI statistics: r only (any run, ``--gene-pcc`` too), or the
#: co-moments of truth and predictions (runs scored from the predictions file)
Needs = Literal["r", "moments", "moran", "domains", "annotation"]


@dataclass(frozen=True)
class WsiMetric:
    """A metric computed per WSI from the statistics and averaged over WSIs.

    Evaluation computes ``compute(stats, config)`` (one value per WSI, NaN where undefined) for
    every declared metric whose ``needs`` the statistics meet, writes the values to
    ``wsi_metrics.csv`` (long: sample_id, cancer_type, metric, value) and puts
    ``<name>_macro`` (mean over cancer types of the per-type mean) and ``<name>_micro`` (mean over
    WSIs) into the summary's headline. The leaderboard bootstraps both over WSIs, the report and
    figures show them with ``label``, and ``--intersect`` recomputes them on the shared genes.

    Attributes
    ----------
    name
        Identifier: the ``metric`` value in ``wsi_metrics.csv`` and the headline key prefix.
    label
        Display label (``\\n`` allowed in figure headers).
    needs
        ``"r"``, ``"moments"``, ``"moran"`` (``--spatial``), ``"domains"`` (``--domains``) or
        ``"annotation"`` (``--domain-key``).
    compute
        ``(WsiStats, ScoreConfig) -> (n_wsi,) float array``.
    higher_is_better, family
        Direction, and the colour family in figures.
    """

    name: str
    label: str
    needs: Needs
    compute: Callable[[WsiStats, ScoreConfig], np.ndarray]
    higher_is_better: bool = True
    family: str = "pcc"

    def available(self, stats: WsiStats) -> bool:
        """Whether ``stats`` hold what the metric needs."""
        if self.needs == "moran":
            return stats.moran is not None
        if self.needs in ("domains", "annotation"):
            from .domains import DOMAINS

            d = stats.domains
            if d is None or self.needs == "domains" or stats.n_wsi == 0:
                return d is not None
            return bool(np.isfinite(d[:, DOMAINS.index("domains_annotation_n")]).any())
        return self.needs == "r" or (stats.has_truth_moments and stats.has_prediction_moments)


#: what a gene-level metric reads: the moments of truth and predictions, the co-moments of truth,
#: predictions and depth, or those of the truth and depth alone (no prediction needed)
GeneNeeds = Literal["moments", "moments+depth", "truth+depth"]


@dataclass(frozen=True)
class GeneMetric:
    """A correlation per WSI and gene, reduced exactly as Pearson r is: into pathway scores (GPC)
    and the HVG PCC.

    Evaluation computes ``compute(stats, config, groups)`` (``(n_units, n_genes)``, NaN where
    undefined; ``groups``: ``None`` for one unit per WSI, else the pooled group of each WSI, one unit
    per group in sorted order, as the pooled protocols pool r; :mod:`gpc_bench.splits`) for every
    declared gene metric, and writes, named after it:

    - ``gene_scores``: column ``gene_column`` (the per-WSI values);
    - ``pathway_scores.csv`` and ``pathway_wsi_scores.csv``: column ``gpc_<name>``;
    - ``hvg_scores.csv``: column ``pcc_<name>``;
    - the headline: ``gpc_<name>_<collection>`` and ``hvg_pcc_<name>_macro`` / ``_micro``.

    Columns are present in every run; where the statistics lack what the metric needs they hold
    NaN and the summary's ``not_computable`` says why.

    Attributes
    ----------
    name, label, gene_column, needs, compute, higher_is_better, family
        As for :class:`WsiMetric`; ``needs`` is ``"moments+depth"`` or ``"truth+depth"``.
    """

    name: str
    label: str
    gene_column: str
    needs: GeneNeeds
    compute: Callable[[WsiStats, ScoreConfig, list | None], np.ndarray]
    higher_is_better: bool = True
    family: str = "pcc"

    def available(self, stats: WsiStats) -> bool:
        """Whether ``stats`` hold what the metric needs."""
        if self.needs == "moments":
            return stats.has_truth_moments and stats.has_prediction_moments
        if not stats.has_depth:
            return False
        return self.needs == "truth+depth" or stats.has_prediction_moments


#: what a pathway-level metric reads: the per-WSI activity moments (and the depth covariate's)
PathwayNeeds = Literal["activity", "activity+depth", "activity+spatial"]


@dataclass(frozen=True)
class PathwayMetric:
    """A value per WSI and pathway computed from the streamed pathway activities (PAC).

    Evaluation computes ``compute(stats, config, groups)`` (``(n_units, n_pathways)``, NaN where
    undefined; ``groups`` as for :class:`GeneMetric`) and writes, named after it:

    - ``pathway_wsi_scores.csv``: column ``<name>`` (the per-WSI values);
    - ``pathway_scores.csv``: ``<name>`` (the mean over the WSIs where it is defined), ``<name>_sd``
      and ``<name>_n_wsi``;
    - the headline: ``<name>_<collection>`` (the mean over the pathways GPC scores).

    Columns are present in every run; NaN where the statistics lack the activities (``--gene-pcc``,
    ``--intersect`` on fewer genes), with the reason in ``not_computable``.
    """

    name: str
    label: str
    needs: PathwayNeeds
    compute: Callable[[WsiStats, ScoreConfig, list | None], np.ndarray]
    higher_is_better: bool = True
    family: str = "pcc"

    def available(self, stats: WsiStats) -> bool:
        """Whether ``stats`` hold what the metric needs."""
        if stats.activity is None or not np.isfinite(stats.activity).any():
            return stats.n_wsi == 0 and stats.activity is not None
        if self.needs == "activity+spatial":
            return stats.activity_moran is not None
        return self.needs == "activity" or stats.has_depth
