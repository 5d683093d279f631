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
from typing import TYPE_CHECKING

import numpy as np

from ._errors import InputError
from .config import ScoreConfig, resolve_config

if TYPE_CHECKING:
    import anndata as ad
    import pandas as pd

    from .result import Result

logger = logging.getLogger(__name__)


def _gene_variance(source, genes: list[str]) -> np.ndarray | None:

    if source is None:
        return None
    p = Path(source)
    p = p / "gene_variance.csv" if p.is_dir() else p
    if not p.is_file():
        raise InputError(f"gene variance file {p} not found", "give a run folder written by gpc-bench score")
    from .result import Result

    t = Result(None, {}, path=p.parent).table(p.name).astype({"gene": str})
    v = t.set_index("gene")["variance"].reindex(genes).to_numpy(dtype=np.float64)
    if np.isnan(v).all():
        raise InputError(f"none of the tables' genes is in {p}", "use the run scored on the same panel")
    return v


def _truth_moments(truth, genes: list[str], samples: list[str], depth_key: str | None) -> tuple:
    """Spots, per-WSI (mean, M2) of the truth for each gene and its co-moment with the depth
    covariate, one WSI at a time, with the kernel :func:`gpc_bench.score` uses (numpy route); genes
    matched as :func:`gpc_bench.score` matches them (by ID, Ensembl versions ignored; by symbol where
    one side uses Ensembl IDs and the other symbols), NaN for genes the truth lacks. Returns spots per WSI,
    ``(n_wsi, 7, n_genes)`` moments with the prediction's left NaN, ``(n_wsi, 2)`` depth moments,
    the depth source and the truth's gene counts."""
    from .genes import detect_id_style, strip_version, to_symbols
    from .io.align import sample_ids
    from .io.h5ad import open_source
    from .metrics.depth import depth_source, describe, genes_detected
    from .metrics.pcc import MomentAccumulator
    from .stats import MOMENTS

    src = open_source(truth, "truth")
    try:
        t_ids, g_ids = strip_version(src.var_names()), strip_version(np.asarray(genes, dtype=object))
        t_style, g_style = detect_id_style(t_ids), detect_id_style(g_ids)
        if t_style != g_style:  # Ensembl-keyed tables against a symbol truth, or the other way round
            t_sym = src.var_column("gene_symbol") if t_style == "ensembl" else None
            t_ids, g_ids = to_symbols(t_ids, t_style, t_sym), to_symbols(g_ids, g_style)
        where = {g: j for j, g in reversed(list(enumerate(t_ids.tolist()))) if g}
        cols = np.array([where.get(g, -1) for g in g_ids.tolist()])
        if (cols < 0).all():
            raise InputError(f"none of the tables' genes is in the truth {truth}", "use the same gene IDs")
        sid = sample_ids(src).astype(str)
        n = np.zeros(len(samples), np.int64)
        moments = np.full((len(samples), len(MOMENTS), len(genes)), np.nan)
        depth = np.zeros((len(samples), 2))
        info, spot_depth = depth_source(src.obs_column, depth_key)
        take = np.maximum(cols, 0)
        for k, s in enumerate(samples):
            rows = np.flatnonzero(sid == s)
            if not len(rows):
                raise InputError(f"WSI {s!r} of the correlation tables is not in the truth {truth}")
            x = src.read_rows(rows)
            acc = MomentAccumulator(
                x.shape[1], x.shape[1], x_cols=take, y_cols=take, threads=1, kernel="numpy"
            )
            d = np.log1p(genes_detected(x)) if spot_depth is None else spot_depth[rows]
            acc.add(x, x, d)
            m = acc.result()
            n[k] = m.n
            moments[k, 0], moments[k, 1], moments[k, 5] = m.mean_x, m.m2_x, m.cov_xd
            depth[k] = m.mean_d, m.m2_d
        moments[:, :, cols < 0] = np.nan
        counts = {"n_genes_truth": int(src.n_vars), "n_genes_shared": int((cols >= 0).sum())}
    finally:
        src.close()
    return n, moments, depth, info | {"description": describe(info)}, counts


def _wide(table, cancer_types) -> tuple[list[str], list[str], list[str], np.ndarray]:
    """Samples (sorted), genes (first-seen order), cancer types and the r matrix of a long table."""
    import pandas as pd

    samples = sorted(table["sample_id"].astype(str).unique())
    genes = list(dict.fromkeys(table["gene"].astype(str)))
    wide = table.pivot(index="sample_id", columns="gene", values="pcc").reindex(index=samples, columns=genes)
    if isinstance(cancer_types, str | Path):
        ct = pd.read_csv(cancer_types, dtype=str)
        if not {"sample_id", "cancer_type"} <= set(ct.columns):
            raise InputError(f"{cancer_types} needs columns sample_id and cancer_type")
        cancer_types = dict(zip(ct["sample_id"], ct["cancer_type"], strict=True))
    types = [str((cancer_types or {}).get(s, "NA")) for s in samples]
    return samples, genes, types, wide.to_numpy(dtype=np.float64)


def _correlation_stats(samples, genes, types, r, coll, cfg: ScoreConfig, name, info, truth, gene_variance):
    """Per-WSI statistics of given r: flags ``given``/``undefined``, the truth's moments when the
    truth is given, a gene variance when a run folder gives it."""
    from .genes import detect_id_style, ensembl_mask, to_symbols
    from .metrics.hvg import read_hvg_lists
    from .metrics.pcc import GIVEN, UNDEFINED
    from .stats import WsiStats

    ids = np.asarray(genes, dtype=object)
    style = detect_id_style(ids)
    symbols = to_symbols(ids, style)
    n_spots, moments, depth, depth_info = np.zeros(len(samples), np.int64), None, None, None
    counts = {"n_genes_truth": None, "n_genes_shared": len(genes)}
    if truth is not None:
        n_spots, moments, depth, depth_info, counts = _truth_moments(truth, genes, samples, cfg.depth_key)
    counts = {
        "n_genes_predictions": len(genes),
        **counts,
        "n_duplicate_gene_ids_predictions": 0,
        "n_duplicate_gene_ids_truth": None,
        "n_genes_without_symbol": int(sum(1 for s in symbols.tolist() if not s)),
        "n_genes_ensembl_ids": int(ensembl_mask(ids).sum()),
        "n_genes_symbol_ids": int((~ensembl_mask(ids)).sum()),
    }
    stats = WsiStats(
        sample_ids=samples,
        cancer_types=types,
        n_spots=n_spots,
        genes=ids,
        symbols=np.asarray(symbols, dtype=object),
        r=r,
        flags=np.where(np.isfinite(r), GIVEN, UNDEFINED).astype(np.int8),
        moments=moments,
        depth=depth,
        collection=coll,
        hvg_lists=None
        if cfg.hvg.isdigit()
        else read_hvg_lists(cfg.hvg, panel=(ids, np.asarray(symbols, dtype=object))),
        gene_variance=None if gene_variance is None else _gene_variance(gene_variance, genes),
        meta={
            "model": name or "model",
            "control": None,
            "config": cfg.to_dict(),
            "inputs": {
                "gene_pcc": info,
                "gene_variance": None if gene_variance is None else str(gene_variance),
                "truth": None if truth is None else str(getattr(truth, "filename", truth)),
                "gene_id_style": style,
            },
            "gene_counts": counts,
            "depth": depth_info,
            "warnings": [
                f"{name} is not a WSI's table ({why}): reported apart, not scored"
                for name, why in (info or {}).get("pooled", {}).items()
            ],
            "cohort": {"n_wsi": len(samples), "key": None},
            "shard": None,
        },
    )
    return stats


def score_correlations(
    tables: str | Path | pd.DataFrame,
    *,
    config: ScoreConfig | None = None,
    name: str | None = None,
    cancer_types: dict | str | Path | None = None,
    gene_variance: str | Path | None = None,
    truth: str | Path | ad.AnnData | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    **options: object,
) -> Result:
    """Score gene correlation tables (see :func:`~gpc_bench.baselines.adapters.gene_pcc.read_gene_pcc`).

    The r become per-WSI statistics without moments, evaluated by the same
    :func:`gpc_bench.evaluate.evaluate` as :func:`gpc_bench.score`: the same numbers and summary
    keys (``None`` where a number needs what correlations cannot give, listed in
    ``not_computable``).

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
    gpc_bench.result.Result
    """
    import pandas as pd

    from .evaluate import evaluate
    from .io.gmt import check_pathway_paths, load_pathways
    from .io.runfolder import check_out_dir

    t0 = time.perf_counter()
    cfg = resolve_config(config, **options)
    if out is not None:
        check_out_dir(out, overwrite, inputs=[tables, truth, gene_variance, *(cfg.pathways or ())])
    check_pathway_paths(cfg.pathways)
    if truth is not None and gene_variance is not None:
        raise InputError("give --truth or --gene-variance, not both")
    info, given = {}, tables
    if not isinstance(tables, pd.DataFrame):
        from .baselines.adapters.gene_pcc import read_gene_pcc

        source = Path(tables)
        tables, info = read_gene_pcc(tables)
        name = name or source.stem
    samples, genes, types, r = _wide(tables, cancer_types)
    coll = load_pathways(list(cfg.pathways) if cfg.pathways else None)
    cfg = cfg.replace(collection_id=coll.collection_id)
    stats = _correlation_stats(samples, genes, types, r, coll, cfg, name, info, truth, gene_variance)
    res = evaluate(stats, cfg, run_info={"elapsed_s": round(time.perf_counter() - t0, 3)})
    if out is not None:
        res.write(
            out,
            overwrite=overwrite,
            inputs=[p for p in (given, truth, gene_variance) if isinstance(p, str | Path)],
        )
    return res
