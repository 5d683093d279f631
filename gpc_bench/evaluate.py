"""The one reduction from per-WSI statistics to cohort numbers, tables and ``summary.json``.

``score``, ``score --gene-pcc``, ``leaderboard --intersect`` and ``merge`` all end here:
:func:`evaluate` turns a :class:`~gpc_bench.stats.WsiStats` into a :class:`~gpc_bench.result.Result`,
and :func:`reduce` is its array part (what ``--intersect`` re-evaluates on shared genes and WSIs).
Same statistics and config, same numbers and the same summary schema, whatever produced them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ._errors import InputError
from .config import ScoreConfig
from .genes import missing_pathway_genes
from .metrics.pathway import Membership, PathwayScores, membership, pathway_scores, pathway_variance
from .metrics.variance import VarianceAccumulator, assign_levels, level_thresholds
from .splits import POOLED
from .stats import WsiStats

if TYPE_CHECKING:
    from .result import Result

logger = logging.getLogger(__name__)


@dataclass
class Variant:
    """A declared gene metric (:data:`gpc_bench.metrics.registry.GENE_METRICS`) reduced like r."""

    gene_r: np.ndarray  # (n_wsi, n_genes): the per-WSI values (gene_scores)
    paths: PathwayScores  # over the units of the protocol
    hvg_score: np.ndarray | None
    hvg_macro: float | None
    hvg_micro: float | None


@dataclass
class Cohort:
    """Cohort-level numbers reduced from the per-WSI statistics (``None``: not computable)."""

    sets: list
    memb: Membership
    paths: PathwayScores
    scored_gene: np.ndarray
    units: list[str]  # what a pathway score is averaged over: the WSIs, or pooled cancer types
    unit_types: list[str]
    variance: np.ndarray | None
    thresholds: np.ndarray | None
    gene_level: np.ndarray | None
    pathway_variance: np.ndarray | None
    pathway_level: np.ndarray | None
    hvg_score: np.ndarray | None
    hvg_count: np.ndarray | None
    hvg_macro: float | None
    hvg_micro: float | None
    hvg_info: dict | None
    clustering: dict | None
    not_computable: dict[str, str] = field(default_factory=dict)
    #: the declared per-WSI metrics (:data:`gpc_bench.metrics.registry.WSI_METRICS`): name -> values
    wsi_values: dict[str, np.ndarray] = field(default_factory=dict)
    #: the declared gene metrics (:data:`gpc_bench.metrics.registry.GENE_METRICS`): name -> reduced
    variants: dict[str, Variant] = field(default_factory=dict)
    hvg_index: dict[str, np.ndarray] | None = None
    #: (set index, symbol, reason, panel gene) of each pathway gene no panel gene carries
    missing_genes: list = field(default_factory=list)
    #: the declared pathway metrics (:data:`gpc_bench.metrics.registry.PATHWAY_METRICS`): name -> scores
    pathway_values: dict[str, PathwayScores] = field(default_factory=dict)


def cohort_variance(stats: WsiStats) -> tuple[np.ndarray | None, dict[str, np.ndarray] | None]:
    """Gene variance of the truth over all spots and per cancer type, merged over the WSIs in
    order with Chan's formula from their (n, mean, M2); ``None`` when the truth moments are unknown
    (a given ``gene_variance`` is used as it is, without per-type variances)."""
    if stats.gene_variance is not None:
        return stats.gene_variance, None
    if not stats.has_truth_moments:
        return None, None
    n_genes = len(stats.genes)
    total, by_type = VarianceAccumulator(n_genes), {}
    for k, ctype in enumerate(stats.cancer_types):
        n, mean, m2 = int(stats.n_spots[k]), stats.moments[k, 0], stats.moments[k, 1]
        total.add(n, mean, m2)
        by_type.setdefault(ctype, VarianceAccumulator(n_genes)).add(n, mean, m2)
    return total.variance(), {c: acc.variance() for c, acc in by_type.items()}


def _units(stats: WsiStats, cfg: ScoreConfig):
    """The r matrix a pathway score averages over, its units, their cancer types, and the pooled
    group of each WSI (``None``: one unit per WSI)."""
    from .splits import unit_groups, unit_name

    groups = unit_groups(stats.sample_ids, stats.cancer_types, cfg.protocol, cfg.splits)
    if groups is None:
        return stats.r, list(stats.sample_ids), list(stats.cancer_types), None
    if not stats.has_prediction_moments:
        raise InputError(
            f"--protocol {cfg.protocol} needs the co-moments of truth and predictions, not only r",
            "score the predictions file itself (gpc-bench score PRED --truth T)",
        )
    from .metrics import pooled_pcc

    names, r = pooled_pcc(stats.n_spots, stats.moments, groups, cfg.constant_prediction)
    type_of = dict(zip(groups, stats.cancer_types, strict=True))
    return r, [unit_name(cfg.protocol, g) for g in names], [str(type_of[g]) for g in names], groups


def _levels(variance, scored, memb, paths, cfg: ScoreConfig):
    try:
        thresholds = level_thresholds(variance, cfg.n_levels, cfg.variance_bins)
    except ValueError as err:
        if "positive" not in str(err):
            raise InputError(str(err)) from None
        raise InputError(
            "no gene varies in the measured expression", "check that truth holds expression values"
        ) from None
    pw_var = pathway_variance(variance, scored, memb)
    return (
        thresholds,
        assign_levels(variance, thresholds),
        pw_var,
        np.where(paths.ok, assign_levels(pw_var, thresholds), 0),
    )


def _hvg(stats: WsiStats, r_units, unit_types, type_var, cfg: ScoreConfig):
    from .metrics.hvg import resolve_hvg

    if stats.hvg_lists is None and type_var is None:
        return None
    types = sorted(set(stats.cancer_types))
    n = 0 if stats.hvg_lists is not None else int(cfg.hvg)
    idx, info = resolve_hvg(types, type_var, stats.genes, stats.symbols, n, stats.hvg_lists, cfg.hvg_names())
    score, count, macro, micro = _hvg_reduce(r_units, unit_types, idx, cfg)
    if cfg.protocol in POOLED:
        info = info | {"nan_rule": "np.mean over genes and splits: one undefined r makes the mean NaN"}
        undefined = sorted({t for t, s in zip(unit_types, score, strict=True) if not np.isfinite(s)})
        if undefined:
            info["undefined_cancer_types"] = undefined
        if cfg.protocol == "stpath-pooled":
            info["micro"] = "not reported: one pooled unit per cancer type makes micro equal macro"
        else:
            info["micro"] = "mean over test splits of all cancer types"
    return score, count, macro, micro, info, idx


def _hvg_reduce(r_units, unit_types, idx, cfg: ScoreConfig):
    """HVG PCC per unit, macro and micro; under a pooled protocol with its ``np.mean`` NaN rule."""
    from .metrics.hvg import hvg_wsi_scores, macro_micro

    strict = cfg.protocol in POOLED
    score, count = hvg_wsi_scores(r_units, unit_types, idx, strict=strict)
    macro, micro = macro_micro(score, unit_types, strict=strict)
    if cfg.protocol == "stpath-pooled":
        micro = None
    return score, count, macro, micro


def _clustering(stats: WsiStats, cfg: ScoreConfig) -> dict | None:
    from .metrics.clustering import cluster_agreement

    if cfg.cluster == "wsi":
        prof_p, prof_t, labels = stats.moments[:, 2], stats.moments[:, 0], list(stats.cancer_types)
    else:
        prof_p, prof_t, labels = stats.spots.pred, stats.spots.truth, stats.spots.labels.tolist()
    return {
        "level": cfg.cluster,
        "n_items": len(labels),
        "predictions": cluster_agreement(prof_p, labels, cfg.seed),
        "truth": cluster_agreement(prof_t, labels, cfg.seed),
    }


def reduce(stats: WsiStats, cfg: ScoreConfig, sets: list | None = None) -> Cohort:
    """Variance levels, pathway scores (GPC), HVG macro/micro and clustering from ``stats``.

    ``sets`` (default: the statistics' collection, sorted by collection and name) are matched to
    the panel by symbol.
    """
    if sets is None:
        sets = sorted(stats.collection.sets, key=lambda s: (s.collection, s.name))
    memb = membership(stats.symbols, [s.genes for s in sets])
    r_units, units, unit_types, groups = _units(stats, cfg)
    paths = pathway_scores(r_units, memb, cfg.min_genes)
    scored = np.isfinite(r_units).any(axis=0)
    missing: dict[str, str] = {}
    variance, type_var = cohort_variance(stats)
    levels = (None,) * 4
    if variance is not None:
        levels = _levels(variance, scored, memb, paths, cfg)
    else:
        missing["variance_levels"] = "needs gene variances: --truth FILE or --gene-variance RUN_FOLDER"
    hvg = _hvg(stats, r_units, unit_types, type_var, cfg)
    if hvg is None:
        missing["hvg"] = "top-N HVGs need per-cancer-type variances: --truth FILE, or --hvg lists"
        hvg = (None,) * 6
    *hvg, hvg_index = hvg
    clustering = None
    if cfg.cluster is not None:
        if (cfg.cluster == "wsi" and stats.has_prediction_moments) or (
            cfg.cluster == "spot" and stats.spots is not None
        ):
            clustering = _clustering(stats, cfg)
        else:
            missing["clustering"] = "needs the predictions and the truth, not only r"
    elif not stats.has_prediction_moments:
        missing["clustering"] = "needs the predictions and the truth, not only r"
    thresholds, gene_level, pw_var, pw_level = levels
    variants = _variants(stats, cfg, memb, len(units), unit_types, groups, hvg_index, missing)
    return Cohort(
        sets, memb, paths, scored, units, unit_types, variance, thresholds, gene_level, pw_var, pw_level,
        *hvg, clustering, missing, _wsi_values(stats, cfg, missing), variants, hvg_index,
        missing_pathway_genes(sets, memb, stats.genes, stats.symbols),
        _pathway_values(stats, cfg, sets, paths, len(units), groups, missing),
    )  # fmt: skip


def _pathway_values(stats: WsiStats, cfg: ScoreConfig, sets, paths, n_units, groups, missing) -> dict:
    """Every declared pathway metric per unit and pathway, reduced over units (NaN throughout, and a
    line in ``missing``, where the statistics lack the activities or ``sets`` are not theirs)."""
    from .metrics.pathway import over_units
    from .metrics.registry import PATHWAY_METRICS

    own = sorted(stats.collection.sets, key=lambda s: (s.collection, s.name))
    same = [(s.collection, s.name) for s in own] == [(s.collection, s.name) for s in sets]
    out = {}
    for m in PATHWAY_METRICS:
        if same and m.available(stats):
            values = np.asarray(m.compute(stats, cfg, groups), dtype=np.float64)
        else:
            missing[m.name] = (
                "needs the pathway activities of predictions and truth, streamed with --activity on this "
                "collection and panel (not kept for --gene-pcc, nor on fewer genes)"
            )
            values = np.full((n_units, len(sets)), np.nan)
        out[m.name] = over_units(values, np.zeros(values.shape, np.int64), paths.n_scored, paths.status)
    return out


_NEEDS = {  # why a declared gene metric is not computable, by what it needs
    "truth+depth": "needs the truth's co-moments with the depth covariate, which these statistics lack",
    "moments+depth": "needs truth and prediction co-moments with the depth covariate, which these lack",
    "moments": "needs the moments of truth and predictions, not only r",
}
_WSI_NEEDS = {  # why a declared per-WSI metric is not computable
    "moran": "needs Moran's I of the genes: score with --spatial (spot coordinates in obsm['spatial'])",
    "domains": "needs tissue domains: score with --domains (clusters of each WSI's spots)",
    "annotation": "needs a spot annotation: score with --domain-key COLUMN (e.g. pathologist regions)",
    "moments": "needs the moments of truth and predictions, not only r",
}


def _variants(stats: WsiStats, cfg: ScoreConfig, memb, n_units, unit_types, groups, hvg_index, missing):
    """Every declared gene metric, reduced to pathway scores and HVG PCC like r (NaN throughout,
    and a line in ``missing``, where the statistics do not allow it)."""
    from .metrics.registry import GENE_METRICS

    out = {}
    for m in GENE_METRICS:
        if m.available(stats):
            gene_r = np.asarray(m.compute(stats, cfg, None), dtype=np.float64)
            unit_r = gene_r if groups is None else np.asarray(m.compute(stats, cfg, groups), dtype=np.float64)
        else:
            missing[m.name] = _NEEDS[m.needs]
            gene_r = np.full(stats.r.shape, np.nan)
            unit_r = np.full((n_units, stats.r.shape[1]), np.nan)
        score, macro, micro = None, None, None
        if hvg_index is not None:
            score, _, macro, micro = _hvg_reduce(unit_r, unit_types, hvg_index, cfg)
        out[m.name] = Variant(gene_r, pathway_scores(unit_r, memb, cfg.min_genes), score, macro, micro)
    return out


def _wsi_values(stats: WsiStats, cfg: ScoreConfig, missing: dict) -> dict[str, np.ndarray]:
    """Every declared per-WSI metric the statistics allow (the others go into ``missing``)."""
    from .metrics.registry import WSI_METRICS

    out = {}
    for m in WSI_METRICS:
        if m.available(stats):
            out[m.name] = np.asarray(m.compute(stats, cfg), dtype=np.float64)
        else:
            missing[m.name] = _WSI_NEEDS.get(m.needs, f"needs {m.needs}, which these statistics do not hold")
    return out


def evaluate(stats: WsiStats, config: ScoreConfig | None = None, *, run_info: dict | None = None) -> Result:
    """Cohort numbers, long tables and ``summary.json`` of ``stats``.

    Parameters
    ----------
    stats
        Per-WSI statistics (:func:`gpc_bench.collect`, :func:`gpc_bench.stats.read_stats`, or merged
        shards).
    config
        The config to evaluate under (default: the one the statistics were collected under). Options
        that change the per-WSI statistics (truth handling, constant predictions) must match them.
    run_info
        ``run_info.json`` of the result.

    Returns
    -------
    gpc_bench.result.Result
    """
    from ._tables import build_tables
    from .result import Result
    from .summary import _fmt, summarize

    cfg = config or ScoreConfig.from_dict(stats.meta["config"])
    cfg = cfg.replace(collection_id=stats.collection.collection_id)
    cohort = reduce(stats, cfg)
    tables = build_tables(stats, cohort, cfg)
    summary = summarize(stats, cohort, cfg)
    h = summary["headline"]
    logger.info(
        "%s: hvg macro %s, micro %s, GPC %s",
        summary["model"],
        _fmt(h["hvg_pcc_macro"]),
        _fmt(h["hvg_pcc_micro"]),
        ", ".join(f"{c} {v:.4f}" for c, v in h["gpc"].items() if v is not None),
    )
    return Result(tables, summary, run_info or {}, stats=stats)
