"""``summary.json`` of an evaluation: the headline, counts, coverage, protocol and warnings.

:func:`summarize` is the part of :func:`gpc_bench.evaluate.evaluate` that turns the reduced
:class:`~gpc_bench.evaluate.Cohort` into the summary every run folder holds (docs/outputs.md).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from ._errors import examples
from ._version import __version__
from .config import ScoreConfig, deviations
from .stats import WsiStats

if TYPE_CHECKING:
    from .evaluate import Cohort

logger = logging.getLogger(__name__)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _none_nan(v):
    return None if v is None or not np.isfinite(v) else float(v)


def _headline(cohort: Cohort, cfg: ScoreConfig, collections: list[str], types: list[str]) -> dict:
    paths = cohort.paths
    coll_col = np.asarray([s.collection for s in cohort.sets], dtype=object)

    def mean_of(sel):
        sel = sel & np.isfinite(paths.gpc)
        return float(paths.gpc[sel].mean()) if sel.any() else None

    by_level = None
    if cohort.pathway_level is not None:
        by_level = {str(k): mean_of(cohort.pathway_level == k) for k in range(1, cfg.n_levels + 1)}
    headline = {
        "hvg_pcc_macro": cohort.hvg_macro,
        "hvg_pcc_micro": cohort.hvg_micro,
        "gpc": {c: mean_of(paths.ok & (coll_col == c)) for c in collections},
        "gpc_hallmark": mean_of(paths.ok & (coll_col == "hallmark")),
        "gpc_go": mean_of(paths.ok & (coll_col == "go")),
        "gpc_by_variance_level": by_level,
    }
    from .metrics.hvg import macro_micro
    from .metrics.registry import WSI_METRICS

    for name, v in cohort.variants.items():  # every declared gene metric, raw GPC's columns beside it

        def variant_mean(sel, v=v):
            sel = sel & v.paths.ok & np.isfinite(v.paths.gpc)
            return float(v.paths.gpc[sel].mean()) if sel.any() else None

        per = {c: variant_mean(coll_col == c) for c in collections}
        headline[f"gpc_{name}"] = per
        headline |= {f"gpc_{name}_{c}": per[c] for c in collections}
        headline |= {
            f"hvg_pcc_{name}_macro": _none_nan(v.hvg_macro),
            f"hvg_pcc_{name}_micro": _none_nan(v.hvg_micro),
        }
    for name, p in cohort.pathway_values.items():  # every declared pathway metric, by collection

        def pathway_mean(sel, p=p):
            sel = sel & p.ok & np.isfinite(p.gpc)
            return float(p.gpc[sel].mean()) if sel.any() else None

        headline |= {f"{name}_{c}": pathway_mean(coll_col == c) for c in collections}
    headline["coverage"] = coverage(cohort, collections)
    for name in [m.name for m in WSI_METRICS]:  # every declared one: None where not computable
        values = cohort.wsi_values.get(name)
        macro, micro = macro_micro(values, types) if values is not None and len(values) else (None, None)
        headline |= {f"{name}_macro": _none_nan(macro), f"{name}_micro": _none_nan(micro)}
    cl = cohort.clustering
    if cl is not None:
        headline |= {
            "ami": cl["predictions"]["ami"],
            "ari": cl["predictions"]["ari"],
            "ami_truth": cl["truth"]["ami"],
            "ari_truth": cl["truth"]["ari"],
        }
    return headline


#: below these, a run's numbers describe too little of the biology to be ranked with full runs
MIN_PATHWAYS_SCORED = 0.8
MIN_GENES_COVERED = 0.5


def coverage(cohort: Cohort, collections: list[str]) -> dict:
    """Per collection, how many of its pathways were scored out of how many."""
    coll_col = np.asarray([s.collection for s in cohort.sets], dtype=object)
    out = {}
    for c in collections:
        sel = coll_col == c
        n, k = int(sel.sum()), int((cohort.paths.ok & sel).sum())
        out[c] = {"n_pathways": n, "n_scored": k, "fraction": round(k / n, 4) if n else None}
    return out


def coverage_warnings(cov: dict, gene_counts: dict) -> list[str]:
    """The coverage warnings: a collection with fewer than 80% of its pathways scored, or
    predictions covering less than half of the truth's genes."""
    out = [
        f"only {v['n_scored']} of {v['n_pathways']} {c} pathways were scored ({v['fraction']:.0%}): GPC "
        f"{c} describes a fraction of the collection and is not comparable with full runs"
        for c, v in cov.items()
        if v["n_pathways"] and v["fraction"] < MIN_PATHWAYS_SCORED
    ]
    shared, truth = gene_counts.get("n_genes_shared"), gene_counts.get("n_genes_truth")
    if shared is not None and truth and shared / truth < MIN_GENES_COVERED:
        out.append(
            f"the predictions cover {shared:,} of the truth's {truth:,} genes ({shared / truth:.0%}): "
            "scores of a few (often the most variable) genes are inflated against whole-panel runs"
        )
    return out


def _counts(stats: WsiStats, cohort: Cohort) -> dict:
    from .metrics.pcc import PREDICTION_CONSTANT, TRUTH_CONSTANT

    r, flags, paths = stats.r, stats.flags, cohort.paths
    known = stats.has_truth_moments and stats.has_prediction_moments
    return {
        "n_wsi": stats.n_wsi,
        "n_spots": int(stats.n_spots.sum()) if stats.n_spots.all() else None,
        "n_cancer_types": len(set(stats.cancer_types)),
        "n_genes_scored": int(cohort.scored_gene.sum()),
        "n_gene_wsi_pairs": int(r.size),
        "n_gene_wsi_nan": int((~np.isfinite(r)).sum()),
        "n_truth_constant": int((flags == TRUTH_CONSTANT).sum()) if known else None,
        "n_prediction_constant": int((flags == PREDICTION_CONSTANT).sum()) if known else None,
        "n_pathways": len(cohort.sets),
        "n_pathways_scored": int(paths.ok.sum()),
        "n_pathways_too_few_genes": int((paths.status == "too_few_genes").sum()),
        "n_pathways_no_genes_in_panel": int((paths.status == "no_genes_in_panel").sum()),
        "n_pathway_genes_ambiguous": cohort.memb.n_ambiguous,
        "n_pathway_genes_missing": len(cohort.missing_genes),
        "n_pathway_genes_lost_to_ids": sum(1 for r in cohort.missing_genes if r[2] != "not in panel"),
        **stats.meta["gene_counts"],
    }


def _asked_for(name: str, cfg: ScoreConfig) -> bool:
    """Whether the run's config asked for what metric ``name`` needs (always, for what every run
    computes: a metric that every run has is worth a warning when it is missing)."""
    from .metrics.registry import PATHWAY_METRICS, WSI_METRICS

    needs = {m.name: m.needs for m in (*WSI_METRICS, *PATHWAY_METRICS)}.get(name, "")
    asked = {
        "moran": cfg.spatial,
        "domains": cfg.domains is not None,
        "annotation": cfg.domain_key is not None,
        "activity": cfg.activity is not None,
        "activity+depth": cfg.activity is not None,
        "activity+spatial": cfg.activity is not None and cfg.spatial,
    }
    return asked.get(needs, True)


def summarize(stats: WsiStats, cohort: Cohort, cfg: ScoreConfig) -> dict:
    """``summary.json``: headline numbers, counts, the config and provenance (docs/outputs.md)."""
    from .genes import table_info

    coll = stats.collection
    coll_col = [s.collection for s in cohort.sets]
    meta = stats.meta
    warnings = [
        *meta.get("gene_warnings", ()),
        *(meta.get("scale_check") or {}).get("warnings", ()),
        *meta.get("warnings", ()),
        *_outcome_warnings(stats, cohort, cfg),
    ]
    # an opt-in extra the run did not ask for is listed in not_computable, not warned about
    warnings += [f"not computable: {k} ({v})" for k, v in cohort.not_computable.items() if _asked_for(k, cfg)]
    return {
        "model": meta["model"],
        "control": meta.get("control"),
        "gpc_bench_version": __version__,
        "headline": _headline(cohort, cfg, coll.collections, stats.cancer_types),
        "counts": _counts(stats, cohort),
        "cancer_types": {c: stats.cancer_types.count(c) for c in sorted(set(stats.cancer_types))},
        "variance_levels": {
            "method": cfg.variance_bins,
            "n_levels": cfg.n_levels,
            "ddof": 1,
            "thresholds": None if cohort.thresholds is None else cohort.thresholds.tolist(),
        },
        "hvg": cohort.hvg_info,
        "depth": meta.get("depth"),
        "clustering": cohort.clustering,
        "not_computable": cohort.not_computable,
        "pathways": {
            "collection_id": coll.collection_id,
            "collections": {c: coll_col.count(c) for c in coll.collections},
            "sources": coll.sources,
            "manifest_collection_id": (coll.manifest or {}).get("collection_id"),
        },
        "inputs": meta["inputs"],
        "gene_table": table_info(),
        "config": cfg.to_dict(),
        "protocol": _protocol(cfg, coll, cohort.hvg_info),
        "warnings": warnings,
    }


def _protocol(cfg: ScoreConfig, coll, hvg_info) -> dict:
    """The ``protocol`` block: deviations judged by content, and what the content was."""
    from .config import collection_kind

    out = {
        "name": cfg.protocol,
        "deviations_from_published": deviations(cfg, coll, hvg_info),
        "collection": collection_kind(coll),
    }
    if cfg.splits is not None:
        from .io.checksum import sha256_file
        from .splits import read_splits

        out["splits"] = {
            "path": cfg.splits, "sha256": sha256_file(cfg.splits),
            "n_splits": len(set(read_splits(cfg.splits).values())),
        }  # fmt: skip
    return out


def _outcome_warnings(stats: WsiStats, cohort: Cohort, cfg: ScoreConfig) -> list[str]:
    """Warnings about the result itself, logged loudly and recorded in ``summary.json``."""
    out = []
    types = stats.cancer_types
    single = sorted(t for t in set(types) if types.count(t) < 2)
    if single and len(set(types)) > 1:
        out.append(
            f"cancer type(s) {single} have a single WSI: their bootstrap intervals in a leaderboard are "
            "meaningless (a resample within the type always repeats that WSI)"
        )
    cl = cohort.clustering
    if cl is not None:
        k, n = len(set(types)), cl["n_items"]
        if k >= 2 and n < 2 * k:
            out.append(
                f"clustering {n} items into {k} cancer types cannot discriminate: with fewer than two "
                "items per group, AMI/ARI come out (nearly) the same for every input"
            )
    out += coverage_warnings(coverage(cohort, stats.collection.collections), stats.meta["gene_counts"])
    lost = [r for r in cohort.missing_genes if r[2] != "not in panel"]
    if lost:
        sets = cohort.sets
        where = sorted({sets[r[0]].name for r in lost})
        out.append(
            f"{len({r[1] for r in lost})} pathway gene(s) are in the panel under an Ensembl ID that maps "
            f"to another symbol or none, e.g. {examples(sorted({f'{r[1]} ({r[3]})' for r in lost}))}; "
            f"{len(where)} pathway(s) lost them, e.g. {examples(where)} (pathway_genes_missing.csv; add "
            "var['gene_symbol'] to say which symbol a panel ID is)"
        )
    info = cohort.hvg_info or {}
    for c, n_listed in (info.get("n_listed") or {}).items():
        n_in = info["n_in_panel"][c]
        if n_in < n_listed:
            out.append(
                f"HVG list of {c}: only {n_in} of its {n_listed} genes are in the panel; its HVG PCC "
                "averages those (check the list's gene ID style against the panel's)"
            )
    paths = cohort.paths
    if not paths.ok.any():
        n_in = cohort.memb.n_in_panel
        out.append(
            f"no pathway could be scored: {len(stats.genes):,} genes are shared by both files, and no "
            f"pathway has at least {max(cfg.min_genes, 1)} of them with a defined r (the most any has is "
            f"{int(paths.n_scored.max(initial=0))}; {int((n_in > 0).sum())} of {len(n_in)} pathways have "
            "any gene in the panel); GPC is undefined"
        )
    for w in out:
        logger.warning("%s", w)
    return out
