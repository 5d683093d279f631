"""The long result tables of a scoring run, built from arrays (no per-gene Python objects)."""

from __future__ import annotations

import numpy as np

from .metrics.pcc import FLAG_NAMES


def _categorical(codes: np.ndarray, categories):
    """``categories[codes]`` as a pandas Categorical (an object array if they repeat)."""
    import pandas as pd

    cats = pd.Index(np.asarray(categories, dtype=object), dtype=object)
    if cats.hasnans or not cats.is_unique:
        return cats.to_numpy()[codes]
    return pd.Categorical.from_codes(codes, cats)


def _levels(levels: np.ndarray):
    """Variance levels as a nullable integer column (0, no level, becomes NA)."""
    import pandas as pd

    col = pd.array(levels, dtype="Int64")
    col[levels == 0] = pd.NA
    return col


def pathway_scores_table(coll_col, name_col, memb, paths, variance, levels):
    """``pathway_scores.csv``: one row per pathway."""
    import pandas as pd

    return pd.DataFrame(
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
            "variance_level": levels,
            "status": paths.status,
        }
    )


def pathway_genes_table(coll_col, name_col, memb, genes, symbols, scored):
    """``pathway_genes.csv``: the panel genes each pathway was matched to, by pathway then gene."""
    import pandas as pd

    order = np.lexsort((memb.gene, memb.pathway))
    g, p = memb.gene[order], memb.pathway[order]
    return pd.DataFrame(
        {
            "collection": coll_col[p],
            "pathway": name_col[p],
            "gene": np.asarray(genes)[g].astype(str),
            "symbol": np.asarray(symbols)[g].astype(str),
            "scored": scored[g],
        }
    )


def build_tables(per, cohort, panel, wsis, cfg) -> dict:
    """The seven tables of docs/outputs.md, long format, stable order."""
    import pandas as pd

    r_mat, flags = per.r, per.flags
    n_wsi, n_genes = r_mat.shape
    gmap, sets, memb, paths = panel.gmap, panel.sets, panel.memb, cohort.paths
    sample_ids = [w.sample_id for w in wsis]
    wsi_types = [w.cancer_type for w in wsis]
    # object arrays throughout: numpy would make fixed-width unicode arrays of Python lists, which
    # pandas then converts string by string (0.6 s for 23 WSIs x 38,982 genes)
    obj = lambda values: np.asarray(values, dtype=object)  # noqa: E731
    n_spots = np.array([w.n_spots for w in wsis])
    flag_names = np.array([FLAG_NAMES[i] for i in range(3)], dtype=object)
    types, type_code = np.unique(np.asarray(wsi_types, dtype=str), return_inverse=True)
    gene_scores = pd.DataFrame(  # categorical: 23 x 38,982 rows are built from codes, not strings
        {
            "sample_id": _categorical(np.repeat(np.arange(n_wsi), n_genes), sample_ids),
            "cancer_type": _categorical(np.repeat(type_code, n_genes), types),
            "gene": _categorical(np.tile(np.arange(n_genes), n_wsi), gmap.genes.astype(str)),
            "pcc": r_mat.ravel(),
            "n_spots": np.repeat(n_spots, n_genes),
            "flag": _categorical(flags.ravel(), flag_names),
        }
    )
    truth_moments = pd.DataFrame(  # what the truth was, per WSI and gene: checked by the leaderboard
        {
            "sample_id": gene_scores["sample_id"],
            "gene": gene_scores["gene"],
            "n_spots": gene_scores["n_spots"],
            "mean": per.truth_mean.ravel(),
            "m2": per.truth_m2.ravel(),
        }
    )
    n_sets = len(sets)
    coll_col = obj([s.collection for s in sets])
    name_col = obj([s.name for s in sets])
    n_units = len(cohort.units)  # WSIs, or pooled cancer types (protocol hest-pooled)
    pathway_wsi = pd.DataFrame(
        {
            "collection": np.tile(coll_col, n_units),
            "pathway": np.tile(name_col, n_units),
            "sample_id": np.repeat(obj(cohort.units), n_sets),
            "cancer_type": np.repeat(obj(cohort.unit_types), n_sets),
            "score": paths.per_wsi.ravel(),
            "n_scored": paths.n_scored_wsi.ravel(),
        }
    ).sort_values(["collection", "pathway", "sample_id"], kind="stable", ignore_index=True)
    pathway_scores = pathway_scores_table(
        coll_col, name_col, memb, paths, cohort.pathway_variance, _levels(cohort.pathway_level)
    )
    pathway_genes = pathway_genes_table(
        coll_col, name_col, memb, gmap.genes, gmap.symbols, cohort.scored_gene
    )
    hvg_scores = pd.DataFrame(
        {
            "sample_id": cohort.units,
            "cancer_type": cohort.unit_types,
            "n_genes": cohort.hvg_count,
            "pcc": cohort.hvg_score,
        }
    )
    gene_variance = pd.DataFrame(
        {
            "gene": gmap.genes.astype(str),
            "variance": cohort.variance,
            "variance_level": _levels(cohort.gene_level),
        }
    )
    n_levels = cfg.n_levels
    edges = np.concatenate([[0.0], cohort.thresholds, [np.inf]])
    variance_levels = pd.DataFrame(
        {
            "level": np.arange(1, n_levels + 1),
            "lower": edges[:-1],
            "upper": edges[1:],
            "n_genes": np.bincount(cohort.gene_level, minlength=n_levels + 1)[1:],
            "n_pathways": np.bincount(cohort.pathway_level, minlength=n_levels + 1)[1:],
        }
    )
    return {
        "gene_scores": gene_scores,
        "truth_moments": truth_moments,
        "pathway_wsi_scores": pathway_wsi,
        "pathway_scores": pathway_scores,
        "pathway_genes": pathway_genes,
        "hvg_scores": hvg_scores,
        "gene_variance": gene_variance,
        "variance_levels": variance_levels,
    }
