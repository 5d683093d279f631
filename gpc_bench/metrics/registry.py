"""The headline metrics in one place: column, label, direction, format, and where each comes from.

The leaderboard, its figure, the report and the CLI read this list; nothing else names the metric
columns. The number of variance levels comes from the runs' config (:func:`n_levels`).

:data:`WSI_METRICS` lists the declared per-WSI metrics (:class:`~gpc_bench.metrics._declare.WsiMetric`):
evaluation computes them, and their macro and micro averages join :data:`HEADLINE`. Adding one is a
module that declares it and a line here (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .._errors import InputError
from ._declare import GeneMetric, PathwayMetric, WsiMetric
from .activity import ACTIVITY_MORAN_PRED, ACTIVITY_MORAN_TRUTH, PAC, PAC_DEPTH_ADJUSTED
from .all_genes import PCC_ALL_GENES
from .depth import DEPTH_ADJUSTED, DEPTH_BASELINE
from .domains import DOMAIN_METRICS
from .errors import CCC, MSE, R2, RVD
from .spatial import MORAN_ABS_DIFF, SPATIAL_RECALL, SVG_PCC


@dataclass(frozen=True)
class Metric:
    """One headline metric.

    Attributes
    ----------
    column
        Column of the wide leaderboard table.
    label
        Display label (``\\n`` allowed for figure headers).
    collection, key
        Where it lives in the long leaderboard table (``collection``, ``metric``).
    higher_is_better
        Direction.
    family
        Metrics of one family share a colour scale in figures (``pcc``, ``clustering``, ``rate``).
    rank
        Used by the default mean-rank.
    digits
        Decimals shown.
    """

    column: str
    label: str
    collection: str
    key: str
    higher_is_better: bool = True
    family: str = "pcc"
    rank: bool = False
    digits: int = 3

    @property
    def one_line(self) -> str:
        return self.label.replace("\n", " ")


#: the declared per-WSI metrics, in display order
WSI_METRICS: tuple[WsiMetric, ...] = (PCC_ALL_GENES, SPATIAL_RECALL, MORAN_ABS_DIFF, SVG_PCC, *DOMAIN_METRICS)
#: the declared gene metrics (reduced like r into GPC and HVG PCC), in display order
GENE_METRICS: tuple[GeneMetric, ...] = (DEPTH_BASELINE, DEPTH_ADJUSTED, MSE, R2, CCC, RVD)
#: the declared pathway metrics (per WSI and pathway, from the streamed activities)
PATHWAY_METRICS: tuple[PathwayMetric, ...] = (
    PAC,
    PAC_DEPTH_ADJUSTED,
    ACTIVITY_MORAN_TRUTH,
    ACTIVITY_MORAN_PRED,
)


def gene_metric_columns(m: GeneMetric) -> tuple[Metric, ...]:
    """The headline columns of a declared gene metric: GPC per default collection, HVG macro/micro."""
    label = m.label.replace("\n", " ")
    return (
        Metric(
            f"gpc_{m.name}_hallmark",
            f"GPC Hallmark\n{label}",
            "hallmark",
            f"gpc_{m.name}",
            m.higher_is_better,
            m.family,
        ),
        Metric(f"gpc_{m.name}_go", f"GPC GO\n{label}", "go", f"gpc_{m.name}", m.higher_is_better, m.family),
        *(
            Metric(
                f"hvg_pcc_{m.name}_{avg}",
                f"HVG {avg}\n{label}",
                "all",
                f"hvg_pcc_{m.name}_{avg}",
                m.higher_is_better,
                m.family,
            )
            for avg in ("macro", "micro")
        ),  # fmt: skip
    )


def pathway_metric_columns(m: PathwayMetric) -> tuple[Metric, Metric]:
    """The headline columns of a declared pathway metric: its mean per default collection."""
    label = m.label.replace("\n", " ")
    return tuple(
        Metric(f"{m.name}_{c}", f"{label}\n{title}", c, m.name, m.higher_is_better, m.family)
        for c, title in (("hallmark", "Hallmark"), ("go", "GO"))
    )


def wsi_metric_columns(m: WsiMetric) -> tuple[Metric, Metric]:
    """The headline columns of a declared per-WSI metric: its macro and micro averages."""
    label = m.label.replace("\n", " ")
    return tuple(
        Metric(f"{m.name}_{avg}", f"{label}\n{avg}", "all", f"{m.name}_{avg}", m.higher_is_better, m.family)
        for avg in ("macro", "micro")
    )


HEADLINE: tuple[Metric, ...] = (
    Metric("hvg_pcc_macro", "HVG PCC\nmacro", "all", "hvg_pcc_macro", rank=True),
    Metric("hvg_pcc_micro", "HVG PCC\nmicro", "all", "hvg_pcc_micro", rank=True),
    Metric("gpc_hallmark", "GPC\nHallmark", "hallmark", "gpc", rank=True),
    Metric("gpc_go", "GPC\nGO", "go", "gpc", rank=True),
    Metric("win_rate_hallmark", "wins vs ref\nHallmark", "hallmark", "win_rate", family="rate"),
    Metric("win_rate_go", "wins vs ref\nGO", "go", "win_rate", family="rate"),
    Metric("ami", "AMI", "all", "ami", family="clustering"),
    Metric("ari", "ARI", "all", "ari", family="clustering"),
    *(c for m in WSI_METRICS for c in wsi_metric_columns(m)),
    # the depth baseline is a control row of its own; a model's adjusted numbers sit beside its raw ones
    *(c for m in GENE_METRICS if m.needs != "truth+depth" for c in gene_metric_columns(m)),
    *(c for m in PATHWAY_METRICS for c in pathway_metric_columns(m)),
)

BY_COLUMN = {m.column: m for m in HEADLINE}

#: the columns the default mean-rank uses
RANK_COLUMNS = tuple(m.column for m in HEADLINE if m.rank)


def level_metrics(n: int) -> tuple[Metric, ...]:
    """GPC at each of ``n`` variance levels."""
    return tuple(
        Metric(f"gpc_level_{k}", f"GPC\nlevel {k}", "all", f"gpc_level_{k}") for k in range(1, n + 1)
    )


def n_levels(summaries: Iterable[dict]) -> int:
    """The number of variance levels of runs (from their recorded config); runs must agree.

    Runs written before configs were recorded fall back to ``variance_levels.n_levels``.
    """
    values = {}
    for s in summaries:
        cfg = s.get("config") or {}
        values[s.get("model")] = int(cfg.get("n_levels") or s.get("variance_levels", {}).get("n_levels", 10))
    if len(set(values.values())) > 1:
        raise InputError(
            f"the runs were scored with different numbers of variance levels ({values})",
            "re-score them with one --levels",
        )
    return next(iter(values.values()), 10)
