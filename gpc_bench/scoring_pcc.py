"""Scoring from published gene correlations: GPC and HVG PCC when only r per (WSI, gene) is known.

Many pipelines publish only per-gene correlations per WSI (HEST-Benchmark, STFlow, HistoPrism).
Pathway scores depend only on those r, so GPC and the per-WSI pathway table follow directly (the
same :func:`gpc_bench.metrics.pathway_scores` as :func:`gpc_bench.score`). Variance levels need the
genes' variance over the test set: from ``gene_variance`` (an earlier run folder or its
``gene_variance.csv``). HVG PCC needs HVG lists (``hvg`` a folder or JSON list), or per-cancer-type
variances, which correlation tables cannot give. Clustering cannot be computed; the summary says so.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ._errors import InputError
from ._version import __version__
from .config import ScoreConfig, deviations, resolve_config

logger = logging.getLogger(__name__)


def _gene_variance(source, genes: list[str]) -> np.ndarray | None:

    if source is None:
        return None
    p = Path(source)
    p = p / "gene_variance.csv" if p.is_dir() else p
    if not p.is_file():
        raise InputError(f"gene variance file {p} not found", "give a run folder written by gpc-bench score")
    from .io.run import Run

    t = Run(p.parent, {}).table(p.name).astype({"gene": str})
    v = t.set_index("gene")["variance"].reindex(genes).to_numpy(dtype=np.float64)
    if np.isnan(v).all():
        raise InputError(f"none of the tables' genes is in {p}", "use the run scored on the same panel")
    return v


def _truth_variances(truth, genes: list[str], samples: list[str], types: list[str]):
    """Gene variance over the truth's spots of ``samples`` (overall and per cancer type), one WSI at
    a time; genes matched by ID (Ensembl versions ignored), NaN for genes the truth lacks."""
    from .genes import strip_version
    from .io.align import sample_ids
    from .io.h5ad import open_source
    from .metrics.variance import VarianceAccumulator

    src = open_source(truth, "truth")
    try:
        where = {g: j for j, g in enumerate(strip_version(src.var_names()).tolist())}
        cols = np.array([where.get(g, -1) for g in strip_version(np.asarray(genes, dtype=object)).tolist()])
        if (cols < 0).all():
            raise InputError(f"none of the tables' genes is in the truth {truth}", "use the same gene IDs")
        sid = sample_ids(src).astype(str)
        total = VarianceAccumulator(len(genes))
        by_type: dict[str, VarianceAccumulator] = {}
        for s, c in zip(samples, types, strict=True):
            rows = np.flatnonzero(sid == s)
            if not len(rows):
                raise InputError(f"WSI {s!r} of the correlation tables is not in the truth {truth}")
            x = src.read_rows(rows).astype(np.float64)[:, np.maximum(cols, 0)]
            x[:, cols < 0] = np.nan
            mean = x.mean(0)
            m2 = ((x - mean) ** 2).sum(0)
            total.add(len(rows), mean, m2)
            by_type.setdefault(c, VarianceAccumulator(len(genes))).add(len(rows), mean, m2)
    finally:
        src.close()
    return total.variance(), {c: acc.variance() for c, acc in by_type.items()}


def score_correlations(
    tables,
    *,
    config: ScoreConfig | None = None,
    name: str | None = None,
    cancer_types: dict | str | Path | None = None,
    gene_variance=None,
    truth=None,
    out: str | Path | None = None,
    overwrite: bool = False,
    **options,
):
    """Score gene correlation tables (see :func:`~gpc_bench.baselines.adapters.gene_pcc.read_gene_pcc`).

    Parameters
    ----------
    tables
        A folder or file of correlation tables, or the long frame itself (sample_id, gene, pcc).
    config, options
        As for :func:`gpc_bench.score`; ``constant_prediction`` and the truth options have no effect
        (the r are given).
    cancer_types
        sample id -> cancer type, or a CSV with ``sample_id`` and ``cancer_type`` (default: one type).
    gene_variance
        A run folder (or its ``gene_variance.csv``) of the same truth: gives the variance levels.
    truth
        Or the measured expression itself (``.h5ad`` path or AnnData, log1p): gives the variance
        levels and, per cancer type, the top-N HVGs.

    Returns
    -------
    gpc_bench.scoring.ScoreResult
        Without ``truth_moments`` (empty) and, without ``gene_variance``, without levels.
    """
    import pandas as pd

    from ._table import NullableInt, Table, levels
    from ._tables import (
        _obj,
        gene_scores_table,
        gene_variance_table,
        hvg_table,
        pathway_genes_table,
        pathway_scores_table,
        pathway_wsi_table,
        variance_levels_table,
    )
    from .genes import detect_id_style, to_symbols
    from .io.gmt import check_pathway_paths, load_pathways
    from .io.runfolder import check_out_dir
    from .metrics import hvg_macro_micro, membership, pathway_scores
    from .metrics.hvg import hvg_wsi_scores, match_genes, read_hvg_lists
    from .metrics.pathway import pathway_variance
    from .metrics.variance import assign_levels, level_thresholds
    from .scoring import ScoreResult

    t0 = time.perf_counter()
    cfg = resolve_config(config, **options)
    if out is not None:
        check_out_dir(out, overwrite, inputs=[tables, truth, gene_variance, *(cfg.pathways or ())])
    check_pathway_paths(cfg.pathways)
    info = {}
    if not isinstance(tables, pd.DataFrame):
        from .baselines.adapters.gene_pcc import read_gene_pcc

        source = Path(tables)
        tables, info = read_gene_pcc(tables)
        name = name or source.stem
    table = tables
    samples = sorted(table["sample_id"].astype(str).unique())
    genes = list(dict.fromkeys(table["gene"].astype(str)))
    wide = table.pivot(index="sample_id", columns="gene", values="pcc").reindex(index=samples, columns=genes)
    r = wide.to_numpy(dtype=np.float64)
    if isinstance(cancer_types, str | Path):
        ct = pd.read_csv(cancer_types, dtype=str)
        if not {"sample_id", "cancer_type"} <= set(ct.columns):
            raise InputError(f"{cancer_types} needs columns sample_id and cancer_type")
        cancer_types = dict(zip(ct["sample_id"], ct["cancer_type"], strict=True))
    types = [str((cancer_types or {}).get(s, "NA")) for s in samples]
    ids = np.asarray(genes, dtype=object)
    symbols = to_symbols(ids, detect_id_style(ids))
    coll = load_pathways(list(cfg.pathways) if cfg.pathways else None)
    cfg = cfg.replace(collection_id=coll.collection_id)
    sets = sorted(coll.sets, key=lambda s: (s.collection, s.name))
    memb = membership(symbols, [s.genes for s in sets])
    paths = pathway_scores(r, memb, cfg.min_genes)
    scored = np.isfinite(r).any(axis=0)
    not_computable = {"clustering": "needs the predictions and the truth, not only r"}
    if truth is not None and gene_variance is not None:
        raise InputError("give --truth or --gene-variance, not both")
    type_var = None
    if truth is not None:
        var, type_var = _truth_variances(truth, genes, samples, types)
    else:
        var = _gene_variance(gene_variance, genes)
    gene_level = pw_level = thresholds = None
    if var is not None:
        thresholds = level_thresholds(var, cfg.n_levels, cfg.variance_bins)
        gene_level = assign_levels(var, thresholds)
        pw_level = np.where(paths.ok, assign_levels(pathway_variance(var, scored, memb), thresholds), 0)
    else:
        not_computable["variance_levels"] = "needs gene variances: --truth FILE or --gene-variance RUN_FOLDER"
    hvg_score = hvg_count = None
    if not cfg.hvg.isdigit():
        lists = read_hvg_lists(cfg.hvg)
        idx = {c: match_genes(lists.get(c, lists.get(None)) or [], ids, symbols) for c in set(types)}
        hvg_score, hvg_count = hvg_wsi_scores(r, types, idx)
        macro, micro = hvg_macro_micro(hvg_score, types)
    elif type_var is not None:
        from .metrics.hvg import top_variable

        idx = {c: top_variable(v, int(cfg.hvg)) for c, v in type_var.items()}
        hvg_score, hvg_count = hvg_wsi_scores(r, types, idx)
        macro, micro = hvg_macro_micro(hvg_score, types)
    else:
        not_computable["hvg"] = "top-N HVGs need per-cancer-type variances: --truth FILE, or --hvg lists"
        macro = micro = None
    coll_col = np.asarray([s.collection for s in sets], dtype=object)
    name_col = np.asarray([s.name for s in sets], dtype=object)

    def mean_of(sel):
        sel = sel & np.isfinite(paths.gpc)
        return float(paths.gpc[sel].mean()) if sel.any() else None

    by_level = (
        {str(k): mean_of(pw_level == k) for k in range(1, cfg.n_levels + 1)} if pw_level is not None else None
    )
    headline = {
        "hvg_pcc_macro": macro,
        "hvg_pcc_micro": micro,
        "gpc": {c: mean_of(paths.ok & (coll_col == c)) for c in coll.collections},
        "gpc_hallmark": mean_of(paths.ok & (coll_col == "hallmark")),
        "gpc_go": mean_of(paths.ok & (coll_col == "go")),
        "gpc_by_variance_level": by_level,
    }
    n_wsi, n_genes = r.shape
    nan_genes = np.full(n_genes, np.nan)
    no_level = levels(np.zeros(n_genes, np.int64))
    tables_out = {
        "gene_scores": gene_scores_table(
            r,
            samples,
            types,
            genes,
            NullableInt(np.zeros(n_wsi * n_genes, np.int64), np.ones(n_wsi * n_genes, bool)),
            _obj(np.where(np.isfinite(r.ravel()), "given", "undefined")),
        ),
        "truth_moments": Table(
            {
                "sample_id": _obj([]),
                "gene": _obj([]),
                "n_spots": np.zeros(0, np.int64),
                "mean": np.zeros(0),
                "m2": np.zeros(0),
            }
        ),
        "pathway_wsi_scores": pathway_wsi_table(coll_col, name_col, samples, types, paths),
        "pathway_scores": pathway_scores_table(
            coll_col,
            name_col,
            memb,
            paths,
            pathway_variance(var, scored, memb) if var is not None else np.full(len(sets), np.nan),
            levels(pw_level if pw_level is not None else np.zeros(len(sets), np.int64)),
        ),
        "pathway_genes": pathway_genes_table(coll_col, name_col, memb, ids, symbols, scored),
        "hvg_scores": hvg_table(
            samples,
            types,
            hvg_count if hvg_count is not None else np.zeros(n_wsi, np.int64),
            hvg_score if hvg_score is not None else np.full(n_wsi, np.nan),
        ),
        "gene_variance": gene_variance_table(
            genes,
            var if var is not None else nan_genes,
            levels(gene_level) if gene_level is not None else no_level,
        ),
        "variance_levels": variance_levels_table(
            cfg.n_levels,
            thresholds if thresholds is not None else np.full(cfg.n_levels - 1, np.nan),
            gene_level if gene_level is not None else np.zeros(0, np.int64),
            pw_level if pw_level is not None else np.zeros(0, np.int64),
        ),
    }
    summary = {
        "model": name or "model",
        "control": None,
        "gpc_bench_version": __version__,
        "headline": headline,
        "counts": {
            "n_wsi": n_wsi,
            "n_genes": n_genes,
            "n_gene_wsi_nan": int((~np.isfinite(r)).sum()),
            "n_pathways": len(sets),
            "n_pathways_scored": int(paths.ok.sum()),
        },
        "cancer_types": {c: types.count(c) for c in sorted(set(types))},
        "variance_levels": {
            "method": cfg.variance_bins,
            "n_levels": cfg.n_levels,
            "ddof": 1,
            "thresholds": thresholds.tolist() if thresholds is not None else None,
        },  # fmt: skip
        "pathways": {
            "collection_id": coll.collection_id,
            "collections": {c: int((coll_col == c).sum()) for c in coll.collections},
            "sources": coll.sources,
        },
        "inputs": {
            "gene_pcc": info,
            "gene_variance": None if gene_variance is None else str(gene_variance),
            "truth": None if truth is None else str(getattr(truth, "filename", truth)),
        },
        "not_computable": not_computable,
        "config": cfg.to_dict(),
        "protocol": {"name": cfg.protocol, "deviations_from_published": deviations(cfg)},
        "warnings": [f"not computable from correlations: {k} ({v})" for k, v in not_computable.items()],
    }
    res = ScoreResult(tables_out, summary=summary, run_info={"elapsed_s": round(time.perf_counter() - t0, 3)})
    if out is not None:
        res.write(out, overwrite=overwrite, inputs=[tables, truth, gene_variance])
    return res
