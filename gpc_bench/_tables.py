"""The long result tables of a scoring run, built from arrays (no per-gene Python objects, no pandas)."""

from __future__ import annotations

import numpy as np

from ._table import Categorical, NullableInt, Table, categorical, levels
from .metrics.pcc import FLAG_NAMES

#: the run folder's result tables and their files, in the order they are written (docs/outputs.md)
TABLE_FILES = {
    "gene_scores": "gene_scores.parquet",
    "pathway_wsi_scores": "pathway_wsi_scores.csv",
    "pathway_scores": "pathway_scores.csv",
    "pathway_genes": "pathway_genes.csv",
    "pathway_genes_missing": "pathway_genes_missing.csv",
    "hvg_scores": "hvg_scores.csv",
    "gene_variance": "gene_variance.csv",
    "variance_levels": "variance_levels.csv",
    "wsi_metrics": "wsi_metrics.csv",
}
TABLES = tuple(TABLE_FILES)


def _obj(values) -> np.ndarray:
    return np.asarray(values, dtype=object)


def _strings(codes: np.ndarray, values) -> Categorical:
    """A string column ``values[codes]``, kept as codes (plain strings in a DataFrame)."""
    return categorical(codes, values, pandas_category=False)


def gene_scores_table(
    r_mat, sample_ids, wsi_types, genes, n_spots: NullableInt | np.ndarray, flag, extra: dict | None = None
) -> Table:
    """``gene_scores.parquet``: one row per WSI and gene, WSI-major (built from codes, not strings);
    ``extra``: further ``(n_wsi, n_genes)`` columns by name."""
    n_wsi, n_genes = r_mat.shape
    types, type_code = np.unique(np.asarray(wsi_types, dtype=str), return_inverse=True)
    return Table(
        {
            "sample_id": categorical(np.repeat(np.arange(n_wsi), n_genes), sample_ids),
            "cancer_type": categorical(np.repeat(type_code, n_genes), types),
            "gene": categorical(np.tile(np.arange(n_genes), n_wsi), np.asarray(genes).astype(str)),
            "pcc": r_mat.ravel(),
            "n_spots": n_spots,
            "flag": flag,
            **{k: v.ravel() for k, v in (extra or {}).items()},
        }
    )


def pathway_wsi_table(coll_col, name_col, units, unit_types, paths, extra: dict | None = None) -> Table:
    """``pathway_wsi_scores.csv``: one row per pathway and WSI (or pooled unit), sorted by
    collection, pathway and sample id; ``extra``: further scores by column name
    (:class:`~gpc_bench.metrics.pathway.PathwayScores` of a gene metric)."""
    n_sets, n_units = len(coll_col), len(units)
    table = Table(
        {
            "collection": _strings(np.tile(np.arange(n_sets), n_units), coll_col),
            "pathway": _strings(np.tile(np.arange(n_sets), n_units), name_col),
            "sample_id": _strings(np.repeat(np.arange(n_units), n_sets), units),
            "cancer_type": _strings(np.repeat(np.arange(n_units), n_sets), unit_types),
            "score": paths.per_wsi.ravel(),
            "n_scored": paths.n_scored_wsi.ravel(),
            **{k: p.per_wsi.ravel() for k, p in (extra or {}).items()},
        }
    )
    # rank of each row's (collection, pathway) and sample id: equal names share a rank, so the
    # order is that of a stable sort by the three columns
    set_rank = _rank(list(zip(coll_col.tolist(), name_col.tolist(), strict=True)))
    unit_rank = _rank([str(u) for u in units])
    order = np.lexsort((np.repeat(unit_rank, n_sets), np.tile(set_rank, n_units)))
    return table.take(order)


def _rank(keys: list) -> np.ndarray:
    """Dense rank of each key in sorted order (equal keys share a rank)."""
    distinct = sorted(set(keys))
    where = {k: i for i, k in enumerate(distinct)}
    return np.array([where[k] for k in keys], dtype=np.int64)


def pathway_scores_table(
    coll_col, name_col, memb, paths, variance, level: NullableInt, extra=None, values=None
) -> Table:
    """``pathway_scores.csv``: one row per pathway (``extra``: gene metrics' scores by column;
    ``values``: pathway metrics, with their SD and WSI count)."""
    more = {}
    for k, p in (values or {}).items():
        more |= {k: p.gpc, f"{k}_sd": p.gpc_sd, f"{k}_n_wsi": p.n_wsi}
    return Table(
        {
            "collection": coll_col,
            "pathway": name_col,
            "set_size": memb.set_size,
            "n_in_panel": memb.n_in_panel,
            "n_scored": paths.n_scored,
            "gpc": paths.gpc,
            "gpc_sd": paths.gpc_sd,
            "n_wsi": paths.n_wsi,
            "variance": variance,
            "variance_level": level,
            "status": paths.status,
            **{k: p.gpc for k, p in (extra or {}).items()},
            **more,
        }
    )


def pathway_genes_table(coll_col, name_col, memb, genes, symbols, scored) -> Table:
    """``pathway_genes.csv``: the panel genes each pathway was matched to, by pathway then gene."""
    order = np.lexsort((memb.gene, memb.pathway))
    g, p = memb.gene[order], memb.pathway[order]
    return Table(
        {
            "collection": _strings(p, coll_col),
            "pathway": _strings(p, name_col),
            "gene": _strings(g, np.asarray(genes).astype(str)),
            "symbol": _strings(g, np.asarray(symbols).astype(str)),
            "scored": scored[g],
        }
    )


def missing_genes_table(coll_col, name_col, rows) -> Table:
    """``pathway_genes_missing.csv``: each pathway gene no panel gene carries, and why
    (:func:`gpc_bench.genes.missing_pathway_genes`)."""
    k = np.asarray([r[0] for r in rows], dtype=np.int64)
    return Table(
        {
            "collection": _strings(k, coll_col),
            "pathway": _strings(k, name_col),
            "symbol": _obj([r[1] for r in rows]),
            "reason": _obj([r[2] for r in rows]),
            "panel_gene": _obj([r[3] for r in rows]),
        }
    )


def hvg_table(units, unit_types, count, score, extra: dict | None = None) -> Table:
    """``hvg_scores.csv``: one row per WSI (or pooled unit); ``extra``: gene metrics' HVG PCC."""
    return Table(
        {
            "sample_id": _obj(units),
            "cancer_type": _obj(unit_types),
            "n_genes": count,
            "pcc": score,
            **(extra or {}),
        }
    )


def gene_variance_table(genes, variance, level: NullableInt) -> Table:
    """``gene_variance.csv``: one row per panel gene."""
    return Table({"gene": _obj(np.asarray(genes).astype(str)), "variance": variance, "variance_level": level})


def variance_levels_table(n_levels: int, thresholds, gene_level, pathway_level) -> Table:
    """``variance_levels.csv``: one row per level, with its bounds and counts."""
    edges = np.concatenate([[0.0], thresholds, [np.inf]])
    return Table(
        {
            "level": np.arange(1, n_levels + 1),
            "lower": edges[:-1],
            "upper": edges[1:],
            "n_genes": np.bincount(gene_level, minlength=n_levels + 1)[1:],
            "n_pathways": np.bincount(pathway_level, minlength=n_levels + 1)[1:],
        }
    )


def wsi_metrics_table(sample_ids, cancer_types, values: dict[str, np.ndarray]) -> Table:
    """``wsi_metrics.csv``: the declared per-WSI metrics, one row per metric and WSI (by metric,
    then sample id)."""
    names = list(values)
    n = len(sample_ids)
    return Table(
        {
            "sample_id": _strings(np.tile(np.arange(n), len(names)), _obj(sample_ids)),
            "cancer_type": _strings(np.tile(np.arange(n), len(names)), _obj(cancer_types)),
            "metric": _strings(np.repeat(np.arange(len(names)), n), _obj(names)),
            "value": np.concatenate([values[k] for k in names]) if names else np.zeros(0),
        }
    )


def _or_missing(values, n: int, fill=np.nan) -> np.ndarray:
    return np.full(n, fill) if values is None else values


def build_tables(stats, cohort, cfg) -> dict[str, Table]:
    """The tables of docs/outputs.md from :class:`~gpc_bench.stats.WsiStats` and the reduced
    :class:`~gpc_bench.evaluate.Cohort`: long format, stable order (``NaN``/empty where a number
    is not computable)."""
    n_wsi, n_genes = stats.r.shape
    sets, memb, paths = cohort.sets, cohort.memb, cohort.paths
    n_spots = np.repeat(stats.n_spots.astype(np.int64), n_genes)
    if not stats.n_spots.all():
        n_spots = NullableInt(n_spots, n_spots == 0)
    flag_names = _obj([FLAG_NAMES[i] for i in range(len(FLAG_NAMES))])
    from .metrics.registry import GENE_METRICS

    variants = [(m, cohort.variants[m.name]) for m in GENE_METRICS]
    gene_scores = gene_scores_table(
        stats.r,
        stats.sample_ids,
        stats.cancer_types,
        stats.genes,
        n_spots,
        categorical(stats.flags.ravel(), flag_names),
        {m.gene_column: v.gene_r for m, v in variants},
    )
    pathway_extra = {f"gpc_{m.name}": v.paths for m, v in variants}
    pathway_values = cohort.pathway_values  # the declared pathway metrics: per WSI, mean, SD, count
    coll_col, name_col = _obj([s.collection for s in sets]), _obj([s.name for s in sets])
    n_units = len(cohort.units)
    no_levels = np.zeros(n_genes, np.int64)
    gene_level = _or_missing(cohort.gene_level, n_genes, 0)
    pathway_level = _or_missing(cohort.pathway_level, len(sets), 0)
    thresholds = _or_missing(cohort.thresholds, cfg.n_levels - 1)
    return {
        "gene_scores": gene_scores,
        "pathway_wsi_scores": pathway_wsi_table(
            coll_col, name_col, cohort.units, cohort.unit_types, paths, pathway_extra | pathway_values
        ),
        "pathway_scores": pathway_scores_table(
            coll_col, name_col, memb, paths, _or_missing(cohort.pathway_variance, len(sets)),
            levels(pathway_level), pathway_extra, pathway_values,
        ),
        "pathway_genes": pathway_genes_table(
            coll_col, name_col, memb, stats.genes, stats.symbols, cohort.scored_gene
        ),
        "pathway_genes_missing": missing_genes_table(coll_col, name_col, cohort.missing_genes),
        "hvg_scores": hvg_table(
            cohort.units,
            cohort.unit_types,
            _or_missing(cohort.hvg_count, n_units, 0).astype(np.int64),
            _or_missing(cohort.hvg_score, n_units),
            {f"pcc_{m.name}": _or_missing(v.hvg_score, n_units) for m, v in variants},
        ),
        "gene_variance": gene_variance_table(
            stats.genes, _or_missing(cohort.variance, n_genes), levels(gene_level)
        ),
        "variance_levels": variance_levels_table(
            cfg.n_levels,
            thresholds,
            no_levels[:0] if cohort.gene_level is None else gene_level,
            no_levels[:0] if cohort.pathway_level is None else pathway_level,
        ),
        "wsi_metrics": wsi_metrics_table(stats.sample_ids, stats.cancer_types, cohort.wsi_values),
    }  # fmt: skip
