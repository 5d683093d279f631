"""One scoring run: stream WSIs -> gene table -> pathway and HVG tables -> run folder."""

from __future__ import annotations

import importlib
import logging
import platform
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._errors import InputError, examples
from ._per_wsi import score_wsis
from ._version import __version__
from .io.align import align_genes, align_spots
from .io.checksum import file_sha256
from .io.gmt import load_pathways
from .io.h5ad import open_source
from .io.runfolder import atomic_dir, dumps_json, write_parquet
from .io.stream import WsiReader
from .metrics.pathway import membership, pathway_wsi_scores
from .metrics.pcc import (
    FLAG_NAMES,
    PREDICTION_CONSTANT,
    TRUTH_CONSTANT,
    default_threads,
    kernel_name,
    warm_up,
)
from .metrics.variance import assign_levels, level_thresholds

logger = logging.getLogger(__name__)

TRUTH_LAYER = "truth"


@dataclass
class ScoreResult:
    """Tables of one scoring run (long format) and its summary.

    Use :meth:`write` to save them as a run folder (see docs/outputs.md).
    """

    gene_scores: object
    pathway_wsi_scores: object
    pathway_scores: object
    pathway_genes: object
    hvg_scores: object
    gene_variance: object
    variance_levels: object
    summary: dict
    run_info: dict = field(default_factory=dict)

    @property
    def headline(self) -> dict:
        return self.summary["headline"]

    def write(self, out: str | Path, overwrite: bool = False) -> Path:
        """Write every table into ``out`` atomically (a temporary folder renamed into place)."""
        from concurrent.futures import ThreadPoolExecutor

        out = Path(out)
        with atomic_dir(out, overwrite=overwrite) as tmp, ThreadPoolExecutor(1) as pool:
            # the parquet writer works outside the GIL: the CSVs are written meanwhile
            parquet = pool.submit(write_parquet, self.gene_scores, tmp / "gene_scores.parquet")
            for name in (
                "pathway_wsi_scores",
                "pathway_scores",
                "pathway_genes",
                "hvg_scores",
                "gene_variance",
                "variance_levels",
            ):
                getattr(self, name).to_csv(tmp / f"{name}.csv", index=False, lineterminator="\n")
            (tmp / "summary.json").write_text(dumps_json(self.summary))
            (tmp / "run_info.json").write_text(dumps_json(self.run_info))
            parquet.result()
        logger.info("wrote %s", out)
        return out

    def __repr__(self) -> str:
        h = self.headline
        return (
            f"ScoreResult(model={self.summary['model']!r}, n_wsi={self.summary['counts']['n_wsi']}, "
            f"gpc_hallmark={h.get('gpc_hallmark')}, gpc_go={h.get('gpc_go')}, "
            f"hvg_pcc_macro={h.get('hvg_pcc_macro')})"
        )


class _Checksums:
    """sha256 of input files, on a background thread while scoring runs (reused when cached)."""

    def __init__(self, paths: dict[str, Path | None], enabled: bool) -> None:
        self.result: dict[str, str | None] = {k: None for k in paths}
        self.cached: dict[str, bool | None] = {k: None for k in paths}
        self._thread = None
        todo = {k: p for k, p in paths.items() if p is not None and enabled}
        if todo:

            def work():
                for k, p in todo.items():
                    self.result[k], self.cached[k] = file_sha256(p)

            self._thread = threading.Thread(target=work, daemon=True)
            self._thread.start()

    def get(self) -> dict[str, str | None]:
        if self._thread is not None:
            self._thread.join()
        return self.result


def _warm_kernel() -> None:
    """Load the numba kernel while the inputs are read and aligned (a hint: failures are ignored,
    and the kernel then loads, or falls back to numpy, at its first use)."""
    try:
        warm_up()
    except Exception as err:  # noqa: BLE001
        logger.debug("loading the numba kernel ahead failed: %s", err)


def _import_ahead(name: str) -> None:
    """Import a module on a background thread (a hint: a failure shows at the real import)."""

    def run() -> None:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001
            logger.debug("importing %s ahead failed: %s", name, err)

    threading.Thread(target=run, daemon=True).start()


def _categorical(codes: np.ndarray, categories):
    """``categories[codes]`` as a pandas Categorical (an object array if they repeat)."""
    import pandas as pd

    cats = pd.Index(np.asarray(categories, dtype=object), dtype=object)
    if cats.hasnans or not cats.is_unique:
        return cats.to_numpy()[codes]
    return pd.Categorical.from_codes(codes, cats)


def score(
    predictions,
    truth=None,
    *,
    pathways=None,
    name: str | None = None,
    constant_prediction: str = "zero",
    min_genes: int = 10,
    variance_bins: str = "quantile",
    n_levels: int = 10,
    hvg: int | str | Path = 50,
    cluster: str | None = None,
    cluster_spots: int = 2000,
    truth_log1p: bool = False,
    seed: int = 0,
    checksum: bool = True,
    threads: int | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
) -> ScoreResult:
    """Score predicted expression against measured expression.

    Parameters
    ----------
    predictions
        Path to an ``.h5ad`` (or an AnnData): spots x genes, predicted log1p
        expression, ``obs['sample_id']`` required (docs/data-format.md).
    truth
        Measured expression in a second ``.h5ad``/AnnData; ``None`` reads
        ``layers['truth']`` of the predictions.
    pathways
        GMT files and/or collection folders (see :func:`gpc_bench.io.gmt.load_pathways`);
        ``None`` uses the shipped default collection.
    name
        Model name (default: the predictions file stem).
    constant_prediction
        ``"zero"``: r = 0 where the truth varies but the prediction is
        constant; ``"exclude"``: leave such genes out (the published code).
    min_genes
        Pathways with fewer scored genes get no score.
    variance_bins
        ``"quantile"`` (deciles) or ``"log"`` (equal-width in log10 variance).
    n_levels
        Number of variance levels.
    hvg
        Number of top variable genes per cancer type, or a JSON list / a folder
        of ``<CANCER>.json`` lists.
    cluster
        ``None``, ``"wsi"`` (cluster per-WSI mean profiles) or ``"spot"``
        (cluster a seeded subsample of ``cluster_spots`` spots).
    truth_log1p
        Apply log1p to the measured values (raw counts).
    seed
        Seed for clustering and spot subsampling.
    checksum
        Record sha256 of the input files (computed on a background thread).
    threads
        Threads of the PCC kernel (default: usable cores, or ``GPC_BENCH_THREADS``).
    out
        When given, write the run folder there.
    overwrite
        Replace an existing, non-empty ``out``.

    Returns
    -------
    ScoreResult
    """
    t_start = time.perf_counter()
    if constant_prediction not in ("zero", "exclude"):
        raise InputError(f"--constant-prediction must be 'zero' or 'exclude', not {constant_prediction!r}")
    if cluster not in (None, "none", "wsi", "spot"):
        raise InputError(f"--cluster must be 'none', 'wsi' or 'spot', not {cluster!r}")
    cluster = None if cluster == "none" else cluster
    pred = open_source(predictions, "predictions")
    if kernel_name(pred.n_obs * pred.n_vars, load=False) == "numba":
        threading.Thread(target=_warm_kernel, daemon=True).start()
    control = pred.uns_string("gpc_bench_control")  # written by `gpc-bench controls`
    same_file = truth is None
    if same_file:
        if not pred.has_layer(TRUTH_LAYER):
            raise InputError(
                f"predictions file has no layers['{TRUTH_LAYER}'] and no --truth file was given",
                "pass the measured expression with --truth FILE.h5ad, or store it in layers['truth']",
            )
        tsrc, layer = pred, TRUTH_LAYER
    else:
        tsrc, layer = open_source(truth, "truth"), None
    model = name or (Path(predictions).stem if isinstance(predictions, str | Path) else "model")
    checks = _Checksums({"predictions": pred.path, "truth": None if same_file else tsrc.path}, checksum)

    # 1. contract, alignment, pathways and HVG lists: fail before the long part
    pred.check_matrix(None)
    tsrc.check_matrix(layer)
    wsis = align_spots(pred, tsrc, same_file)
    if not wsis:
        raise InputError("the predictions hold no spots")
    # WSI 0 is read while genes and pathways are aligned; the reader then keeps one block ahead
    total_spots = sum(w.n_spots for w in wsis)
    kernel = kernel_name(total_spots * pred.n_vars, load=False)
    reader = WsiReader(pred, tsrc, layer, wsis)
    with reader:
        gmap = align_genes(pred, tsrc, same_file)
        coll = load_pathways(pathways)
        sets = sorted(coll.sets, key=lambda s: (s.collection, s.name))
        memb = membership(gmap.symbols, [s.genes for s in sets])
        if not memb.n_in_panel.any():
            raise InputError(
                f"none of the {len(sets)} pathways has a gene in the panel: pathway genes look like "
                f"{examples(sets[0].genes)}, panel genes like {examples(gmap.genes)} "
                f"(symbols {examples([s for s in gmap.symbols if s])})",
                "pathways use HGNC symbols; give Ensembl panels a var['gene_symbol'] column",
            )
        hvg_lists = None
        if not (isinstance(hvg, int) or (isinstance(hvg, str) and hvg.isdigit())):
            from .metrics.hvg import read_hvg_lists

            hvg_lists = read_hvg_lists(hvg)
        hvg_n = int(hvg) if hvg_lists is None else None

        # 2-4. stream WSIs: r per gene, flags, variance
        kernel = kernel_name(total_spots * pred.n_vars) if kernel == "numba" else kernel  # loads numba
        if threads is None:
            # the reader thread copies blocks in with h5py and keeps one core busy
            threads = max(1, default_threads() - 1)
        _import_ahead("pandas")  # for the tables: its 0.4 s overlap the kernel's GIL-free loops
        per = score_wsis(
            reader,
            gmap,
            (tsrc.n_vars, pred.n_vars),
            constant_prediction=constant_prediction,
            truth_log1p=truth_log1p,
            threads=threads,
            kernel=kernel,
            cluster=cluster,
            cluster_spots=cluster_spots,
            seed=seed,
        )
    r_mat, flags, total, by_type = per.r, per.flags, per.variance, per.variance_by_type
    n_wsi, n_genes = r_mat.shape

    # 5. gene variance and levels
    variance = total.variance()
    try:
        thresholds = level_thresholds(variance, n_levels, variance_bins)
    except ValueError as err:
        if "positive" not in str(err):
            raise InputError(str(err)) from None
        raise InputError(
            "no gene varies in the measured expression", "check that truth holds expression values"
        ) from None
    gene_level = assign_levels(variance, thresholds)

    # pathways: one sparse product for all pathways x WSIs
    pw_scores, pw_counts = pathway_wsi_scores(r_mat, memb.matrix)
    scored_gene = np.isfinite(r_mat).any(axis=0)
    n_scored = np.asarray(memb.matrix.T @ scored_gene.astype(np.float64)).round().astype(np.int64)
    var_sum = np.asarray(memb.matrix.T @ np.where(scored_gene, variance, 0.0))
    pw_var = np.full(len(sets), np.nan)
    np.divide(var_sum, n_scored, out=pw_var, where=n_scored > 0)
    status = np.where(
        memb.n_in_panel == 0,
        "no_genes_in_panel",
        np.where(n_scored < max(min_genes, 1), "too_few_genes", "ok"),
    )
    keep = status == "ok"
    pw_scores[:, ~keep] = np.nan
    n_def = np.isfinite(pw_scores).sum(axis=0)
    gpc = np.full(len(sets), np.nan)
    np.divide(np.nansum(pw_scores, axis=0), n_def, out=gpc, where=n_def > 0)
    gpc_sd = np.full(len(sets), np.nan)
    np.sqrt(
        np.nansum((pw_scores - gpc) ** 2, axis=0) / np.maximum(n_def - 1, 1),
        out=gpc_sd,
        where=n_def > 1,
    )
    pw_level = np.where(keep, assign_levels(pw_var, thresholds), 0)

    # HVG
    from .metrics.hvg import hvg_wsi_scores, macro_micro, resolve_hvg

    wsi_types = [w.cancer_type for w in wsis]
    type_var = {c: acc.variance() for c, acc in by_type.items()}
    hvg_idx, hvg_info = resolve_hvg(
        sorted(by_type), type_var, gmap.genes, gmap.symbols, hvg_n or 0, hvg_lists
    )
    hvg_score, hvg_count = hvg_wsi_scores(r_mat, wsi_types, hvg_idx)
    hvg_macro, hvg_micro = macro_micro(hvg_score, wsi_types)

    # clustering
    clustering = None
    if cluster is not None:
        from .metrics.clustering import cluster_agreement

        prof_p, prof_t, labels = per.profiles(cluster, wsi_types)
        clustering = {
            "level": cluster,
            "n_items": len(labels),
            "predictions": cluster_agreement(prof_p, labels, seed),
            "truth": cluster_agreement(prof_t, labels, seed),
        }

    # 6. tables
    sample_ids = [w.sample_id for w in wsis]
    # object arrays throughout: numpy would make fixed-width unicode arrays of Python lists, which
    # pandas then converts string by string (0.6 s for 23 WSIs x 38,982 genes)
    obj = lambda values: np.asarray(values, dtype=object)  # noqa: E731
    n_spots = np.array([w.n_spots for w in wsis])
    flag_names = np.array([FLAG_NAMES[i] for i in range(3)], dtype=object)
    types, type_code = np.unique(np.asarray(wsi_types, dtype=str), return_inverse=True)
    wsi_code = np.arange(n_wsi)
    import pandas as pd

    gene_scores = pd.DataFrame(  # categorical: 23 x 38,982 rows are built from codes, not strings
        {
            "sample_id": _categorical(np.repeat(wsi_code, n_genes), sample_ids),
            "cancer_type": _categorical(np.repeat(type_code, n_genes), types),
            "gene": _categorical(np.tile(np.arange(n_genes), n_wsi), gmap.genes.astype(str)),
            "pcc": r_mat.ravel(),
            "n_spots": np.repeat(n_spots, n_genes),
            "flag": _categorical(flags.ravel(), flag_names),
        }
    )
    n_sets = len(sets)
    coll_col = [s.collection for s in sets]
    name_col = [s.name for s in sets]
    pathway_wsi = pd.DataFrame(
        {
            "collection": np.tile(obj(coll_col), n_wsi),
            "pathway": np.tile(obj(name_col), n_wsi),
            "sample_id": np.repeat(obj(sample_ids), n_sets),
            "cancer_type": np.repeat(obj(wsi_types), n_sets),
            "score": pw_scores.ravel(),
            "n_scored": pw_counts.ravel(),
        }
    ).sort_values(["collection", "pathway", "sample_id"], kind="stable", ignore_index=True)
    pathway_scores = pd.DataFrame(
        {
            "collection": coll_col,
            "pathway": name_col,
            "set_size": memb.set_size,
            "n_in_panel": memb.n_in_panel,
            "n_scored": n_scored,
            "gpc": gpc,
            "gpc_sd": gpc_sd,
            "n_wsi": n_def,
            "variance": pw_var,
            "variance_level": pd.array(np.where(pw_level > 0, pw_level, 0), dtype="Int64"),
            "status": status,
        }
    )
    pathway_scores.loc[pw_level == 0, "variance_level"] = pd.NA
    coo = memb.matrix.tocoo()
    order = np.lexsort((coo.row, coo.col))
    pathway_genes = pd.DataFrame(
        {
            "collection": np.asarray(coll_col, dtype=object)[coo.col[order]],
            "pathway": np.asarray(name_col, dtype=object)[coo.col[order]],
            "gene": gmap.genes[coo.row[order]].astype(str),
            "symbol": gmap.symbols[coo.row[order]].astype(str),
            "scored": scored_gene[coo.row[order]],
        }
    )
    hvg_scores = pd.DataFrame(
        {"sample_id": sample_ids, "cancer_type": wsi_types, "n_genes": hvg_count, "pcc": hvg_score}
    )
    gene_variance = pd.DataFrame(
        {
            "gene": gmap.genes.astype(str),
            "variance": variance,
            "variance_level": pd.array(gene_level, dtype="Int64"),
        }
    )
    gene_variance.loc[gene_level == 0, "variance_level"] = pd.NA
    edges = np.concatenate([[0.0], thresholds, [np.inf]])
    variance_levels = pd.DataFrame(
        {
            "level": np.arange(1, n_levels + 1),
            "lower": edges[:-1],
            "upper": edges[1:],
            "n_genes": np.bincount(gene_level, minlength=n_levels + 1)[1:],
            "n_pathways": np.bincount(pw_level, minlength=n_levels + 1)[1:],
        }
    )

    # summary
    def coll_mean(c):
        sel = keep & (np.asarray(coll_col) == c) & np.isfinite(gpc)
        return float(gpc[sel].mean()) if sel.any() else None

    by_level = {}
    for lv in range(1, n_levels + 1):
        sel = (pw_level == lv) & np.isfinite(gpc)
        by_level[str(lv)] = float(gpc[sel].mean()) if sel.any() else None
    headline = {
        "hvg_pcc_macro": hvg_macro,
        "hvg_pcc_micro": hvg_micro,
        "gpc": {c: coll_mean(c) for c in coll.collections},
        "gpc_hallmark": coll_mean("hallmark"),
        "gpc_go": coll_mean("go"),
        "gpc_by_variance_level": by_level,
    }
    if clustering is not None:
        headline["ami"] = clustering["predictions"]["ami"]
        headline["ari"] = clustering["predictions"]["ari"]
        headline["ami_truth"] = clustering["truth"]["ami"]
        headline["ari_truth"] = clustering["truth"]["ari"]
    counts = {
        "n_wsi": n_wsi,
        "n_spots": int(n_spots.sum()),
        "n_cancer_types": len(by_type),
        "n_genes_scored": int(scored_gene.sum()),
        "n_gene_wsi_pairs": int(r_mat.size),
        "n_gene_wsi_nan": int((~np.isfinite(r_mat)).sum()),
        "n_truth_constant": int((flags == TRUTH_CONSTANT).sum()),
        "n_prediction_constant": int((flags == PREDICTION_CONSTANT).sum()),
        "n_pathways": n_sets,
        "n_pathways_scored": int(keep.sum()),
        "n_pathways_too_few_genes": int((status == "too_few_genes").sum()),
        "n_pathways_no_genes_in_panel": int((status == "no_genes_in_panel").sum()),
        "n_pathway_genes_ambiguous": memb.n_ambiguous,
        **gmap.counts,
    }
    sums = checks.get()
    from .genes import table_info

    summary = {
        "model": model,
        "control": control,
        "gpc_bench_version": __version__,
        "headline": headline,
        "counts": counts,
        "cancer_types": {c: wsi_types.count(c) for c in sorted(by_type)},
        "variance_levels": {
            "method": variance_bins,
            "n_levels": n_levels,
            "ddof": 1,
            "thresholds": thresholds.tolist(),
        },
        "hvg": hvg_info,
        "clustering": clustering,
        "pathways": {
            "collection_id": coll.collection_id,
            "collections": {c: int((np.asarray(coll_col) == c).sum()) for c in coll.collections},
            "sources": coll.sources,
            "manifest_collection_id": (coll.manifest or {}).get("collection_id"),
        },
        "inputs": {
            "predictions": {
                "file": None if pred.path is None else Path(pred.path).name,
                "sha256": sums["predictions"],
                "gene_id_style": gmap.pred_style,
            },
            "truth": {
                "file": (None if tsrc.path is None else Path(tsrc.path).name)
                if not same_file
                else f"layers/{TRUTH_LAYER}",
                "sha256": sums["truth"] if not same_file else sums["predictions"],
                "gene_id_style": gmap.truth_style,
            },
        },
        "gene_table": table_info(),
        "parameters": {
            "constant_prediction": constant_prediction,
            "min_genes": min_genes,
            "variance_bins": variance_bins,
            "n_levels": n_levels,
            "hvg": str(hvg),
            "cluster": cluster,
            "cluster_spots": cluster_spots if cluster == "spot" else None,
            "truth_log1p": truth_log1p,
            "seed": seed,
        },
    }
    import h5py

    run_info = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "elapsed_s": round(time.perf_counter() - t_start, 3),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "pandas": pd.__version__,
        "kernel": f"{kernel} shifted-sum float64, {threads} thread(s)",
        "matrix_reads": reader.counts,
        "sha256": {k: {True: "cached", False: "computed"}.get(v) for k, v in checks.cached.items()},
        "argv": sys.argv,
    }
    pred.close()
    if not same_file:
        tsrc.close()
    result = ScoreResult(
        gene_scores,
        pathway_wsi,
        pathway_scores,
        pathway_genes,
        hvg_scores,
        gene_variance,
        variance_levels,
        summary,
        run_info,
    )
    logger.info(
        "%s: hvg macro %.4f, micro %.4f, GPC %s",
        model,
        hvg_macro,
        hvg_micro,
        ", ".join(f"{c} {v:.4f}" for c, v in headline["gpc"].items() if v is not None),
    )
    if out is not None:
        result.write(out, overwrite=overwrite)
    return result
