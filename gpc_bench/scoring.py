"""One scoring run, as named stages over one :class:`~gpc_bench.config.ScoreConfig`.

open and validate inputs -> align spots -> align genes, load pathways and HVG lists -> stream WSIs
through the kernel -> reduce to cohort numbers -> build long tables -> write the run folder.
:func:`score` shows the whole flow; each stage is a short function below it.
"""

from __future__ import annotations

import importlib
import logging
import os
import platform
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._errors import InputError, examples
from ._per_wsi import score_wsis
from ._table import Table
from ._tables import CSV_TABLES, PARQUET_TABLES, build_tables
from ._version import __version__
from .config import ScoreConfig, deviations, resolve_config
from .io.align import align_genes, align_spots
from .io.checksum import file_sha256
from .io.gmt import check_pathway_paths, load_pathways
from .io.h5ad import open_source
from .io.runfolder import atomic_dir, check_out_dir, dumps_json
from .io.stream import WsiReader
from .metrics.pathway import PathwayScores, membership, pathway_scores, pathway_variance
from .metrics.pcc import PREDICTION_CONSTANT, TRUTH_CONSTANT, default_threads, kernel_name, warm_up
from .metrics.variance import assign_levels, level_thresholds
from .settings import Settings

logger = logging.getLogger(__name__)

TRUTH_LAYER = "truth"
#: every table of a run folder
TABLES = PARQUET_TABLES + CSV_TABLES


def _table_property(name: str, doc: str) -> property:
    def get(self):
        if name not in self._frames:
            self._frames[name] = self.tables[name].to_pandas()
        return self._frames[name]

    return property(get, doc=doc)


class ScoreResult:
    """Tables of one scoring run (long format) and its summary.

    Each table is a :class:`pandas.DataFrame` built on first access (the command line writes
    the run folder without importing pandas). Use :meth:`write` to save them as a run folder
    (see docs/outputs.md).

    Parameters
    ----------
    tables
        Table name to :class:`gpc_bench._table.Table`, for every name in :data:`TABLES`.
    summary, run_info
        ``summary.json`` and ``run_info.json``.
    """

    def __init__(self, tables: dict[str, Table], summary: dict, run_info: dict | None = None) -> None:
        missing = set(TABLES) - set(tables)
        if missing:
            raise ValueError(f"missing tables: {sorted(missing)}")
        self.tables = tables
        self.summary = summary
        self.run_info = run_info or {}
        self._frames: dict = {}

    gene_scores = _table_property("gene_scores", "Per WSI and gene: r, spots and flag.")
    truth_moments = _table_property("truth_moments", "Per WSI and gene: spots, mean and M2 of the truth.")
    pathway_wsi_scores = _table_property("pathway_wsi_scores", "Per pathway and WSI: mean r of its genes.")
    pathway_scores = _table_property("pathway_scores", "Per pathway: GPC, its SD over WSIs, variance level.")
    pathway_genes = _table_property("pathway_genes", "The panel genes each pathway was matched to.")
    hvg_scores = _table_property("hvg_scores", "Per WSI: mean r of its cancer type's HVGs.")
    gene_variance = _table_property("gene_variance", "Per gene: variance over the cohort and its level.")
    variance_levels = _table_property("variance_levels", "Per level: bounds and counts.")

    @property
    def headline(self) -> dict:
        return self.summary["headline"]

    @property
    def config(self) -> ScoreConfig:
        """The config the run was scored under (``collection_id`` filled in)."""
        return ScoreConfig.from_dict(self.summary["config"])

    def write(self, out: str | Path, overwrite: bool = False, inputs=()) -> Path:
        """Write every table into ``out`` atomically (a temporary folder renamed into place).

        ``overwrite`` replaces only an earlier run folder, and never one that is or holds one of
        ``inputs`` (:mod:`gpc_bench.io.runfolder`)."""
        from concurrent.futures import ThreadPoolExecutor

        out = Path(out)
        folder = atomic_dir(out, overwrite=overwrite, kind="run", inputs=inputs)
        with folder as tmp, ThreadPoolExecutor(1) as pool:
            # Arrow writes parquet outside the GIL: the CSVs are written meanwhile
            tables = self.tables
            parquet = [pool.submit(tables[n].write_parquet, tmp / f"{n}.parquet") for n in PARQUET_TABLES]
            for name in CSV_TABLES:
                tables[name].write_csv(tmp / f"{name}.csv")
            (tmp / "summary.json").write_text(dumps_json(self.summary))
            (tmp / "run_info.json").write_text(dumps_json(self.run_info))
            for done in parquet:
                done.result()
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


@dataclass
class _Inputs:
    """Stage 1: the two opened sources and what is known of them before any matrix is read."""

    pred: object
    truth: object
    layer: str | None
    same_file: bool
    model: str
    control: str | None
    checks: _Checksums
    stats: dict = field(default_factory=dict)

    def check_unchanged(self) -> None:
        """Refuse the run when an input file changed while it was read (size, mtime or inode):
        its numbers would mix two versions of the file."""
        for role, (path, before) in self.stats.items():
            try:
                now = _file_stat(path)
            except OSError:
                now = None
            if now != before:
                raise InputError(
                    f"the {role} file {path} changed while it was being scored (it was "
                    f"{'removed' if now is None else 'modified'}): the numbers would mix two versions",
                    "score again once the file is complete (no copy or write still running)",
                )

    def close(self) -> None:
        self.pred.close()
        if not self.same_file:
            self.truth.close()


def _file_stat(path) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ino


@contextmanager
def _open_inputs(predictions, truth, name: str | None, checksum: bool, kernel: str) -> Iterator[_Inputs]:
    """Open both inputs and check their contract (files are closed on every path)."""
    pred = open_source(predictions, "predictions")
    tsrc = None
    try:
        if kernel_name(pred.n_obs * pred.n_vars, load=False, choice=kernel) == "numba":
            threading.Thread(target=_warm_kernel, daemon=True).start()
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
        pred.check_matrix(None)
        tsrc.check_matrix(layer)
        model = name or (Path(predictions).stem if isinstance(predictions, str | Path) else "model")
        paths = {"predictions": pred.path, "truth": None if same_file else tsrc.path}
        stats = {role: (p, _file_stat(p)) for role, p in paths.items() if p is not None}
        inputs = _Inputs(
            pred,
            tsrc,
            layer,
            same_file,
            model,
            pred.uns_string("gpc_bench_control"),
            _Checksums(paths, checksum),
            stats,
        )
    except BaseException:
        pred.close()
        if tsrc is not None and tsrc is not pred:
            tsrc.close()
        raise
    try:
        yield inputs
    finally:
        inputs.close()


@dataclass
class _Panel:
    """Stage 3: the genes scored, the pathways and their membership, and the HVG lists."""

    gmap: object
    collection: object
    sets: list
    memb: object
    hvg_lists: dict | None
    hvg_n: int | None


def _load_panel(inputs: _Inputs, cfg: ScoreConfig) -> _Panel:
    """Align genes, load the pathways and match them to the panel, read the HVG lists."""
    gmap = align_genes(inputs.pred, inputs.truth, inputs.same_file)
    coll = load_pathways(list(cfg.pathways) if cfg.pathways else None)
    if cfg.collection_id is not None and coll.collection_id != cfg.collection_id:
        raise InputError(
            f"the pathways resolve to collection {coll.collection_id}, but the config asks for "
            f"{cfg.collection_id}",
            "the pathway files changed since the config was recorded; pass the original files",
        )
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
    if not cfg.hvg.isdigit():
        from .metrics.hvg import read_hvg_lists

        hvg_lists = read_hvg_lists(cfg.hvg)
    return _Panel(gmap, coll, sets, memb, hvg_lists, int(cfg.hvg) if hvg_lists is None else None)


@dataclass
class _Cohort:
    """Stage 5: cohort-level numbers reduced from the per-WSI pass."""

    variance: np.ndarray
    thresholds: np.ndarray
    gene_level: np.ndarray
    scored_gene: np.ndarray
    paths: PathwayScores
    pathway_variance: np.ndarray
    pathway_level: np.ndarray
    hvg_score: np.ndarray
    hvg_count: np.ndarray
    hvg_macro: float
    hvg_micro: float
    hvg_info: dict
    clustering: dict | None
    units: list  # what a pathway score is averaged over: the WSIs, or pooled cancer types
    unit_types: list


def _reduce(per, panel: _Panel, wsis, cfg: ScoreConfig) -> _Cohort:
    """Variance levels, pathway scores (GPC), HVG macro/micro and clustering, from the r matrix."""
    from .metrics.hvg import hvg_wsi_scores, macro_micro, resolve_hvg

    variance = per.variance.variance()
    try:
        thresholds = level_thresholds(variance, cfg.n_levels, cfg.variance_bins)
    except ValueError as err:
        if "positive" not in str(err):
            raise InputError(str(err)) from None
        raise InputError(
            "no gene varies in the measured expression", "check that truth holds expression values"
        ) from None
    wsi_types = [w.cancer_type for w in wsis]
    if cfg.protocol == "hest-pooled":  # one r per gene over all spots of each cancer type
        from .metrics import pooled_pcc

        names, r_units = pooled_pcc(per.n, per.moments, wsi_types, cfg.constant_prediction)
        units, unit_types = [f"pooled:{t}" for t in names], [str(t) for t in names]
    else:
        r_units, units, unit_types = per.r, [w.sample_id for w in wsis], wsi_types
    paths = pathway_scores(r_units, panel.memb, cfg.min_genes)
    scored_gene = np.isfinite(r_units).any(axis=0)
    pw_var = pathway_variance(variance, scored_gene, panel.memb)
    type_var = {c: acc.variance() for c, acc in per.variance_by_type.items()}
    gmap = panel.gmap
    hvg_idx, hvg_info = resolve_hvg(
        sorted(per.variance_by_type), type_var, gmap.genes, gmap.symbols, panel.hvg_n or 0, panel.hvg_lists
    )
    hvg_score, hvg_count = hvg_wsi_scores(r_units, unit_types, hvg_idx)
    clustering = None
    if cfg.cluster is not None:
        from .metrics.clustering import cluster_agreement

        prof_p, prof_t, labels = per.profiles(cfg.cluster, wsi_types)
        clustering = {
            "level": cfg.cluster,
            "n_items": len(labels),
            "predictions": cluster_agreement(prof_p, labels, cfg.seed),
            "truth": cluster_agreement(prof_t, labels, cfg.seed),
        }
    return _Cohort(
        variance,
        thresholds,
        assign_levels(variance, thresholds),
        scored_gene,
        paths,
        pw_var,
        np.where(paths.ok, assign_levels(pw_var, thresholds), 0),
        hvg_score,
        hvg_count,
        *macro_micro(hvg_score, unit_types),
        hvg_info,
        clustering,
        units,
        unit_types,
    )


def score(
    predictions,
    truth=None,
    *,
    config: ScoreConfig | None = None,
    name: str | None = None,
    checksum: bool = True,
    settings: Settings | None = None,
    threads: int | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    **options,
) -> ScoreResult:
    """Score predicted expression against measured expression.

    Parameters
    ----------
    predictions
        Path to an ``.h5ad`` (or an AnnData, in memory or backed): spots x genes, predicted log1p
        expression, ``obs['sample_id']`` required (docs/data-format.md).
    truth
        Measured expression in a second ``.h5ad``/AnnData; ``None`` reads ``layers['truth']`` of the
        predictions.
    config
        A :class:`~gpc_bench.config.ScoreConfig` (every option that changes a number).
    name
        Model name (default: the predictions file stem).
    checksum
        Record sha256 of the input files (computed on a background thread).
    settings
        Speed settings (:class:`~gpc_bench.settings.Settings`; default: from the environment).
    threads
        Kernel threads (a shortcut for ``settings.threads``).
    out
        When given, write the run folder there (checked before any work).
    overwrite
        Replace an existing, non-empty ``out``.
    **options
        Fields of :class:`~gpc_bench.config.ScoreConfig` (``pathways``, ``constant_prediction``,
        ``min_genes``, ``hvg``, ...), overriding ``config``.

    Returns
    -------
    ScoreResult
    """
    t_start = time.perf_counter()
    cfg = resolve_config(config, **options)
    settings = (settings or Settings.from_env()).replace(**({} if threads is None else {"threads": threads}))
    if out is not None:  # paths first: a wrong one must not cost a scoring pass
        check_out_dir(out, overwrite, inputs=_input_paths(predictions, truth, cfg))
    check_pathway_paths(cfg.pathways)
    with _open_inputs(predictions, truth, name, checksum, settings.kernel) as inputs:  # 1. open, validate
        _stage("inputs opened", t_start)
        wsis = align_spots(inputs.pred, inputs.truth, inputs.same_file)  # 2. spots
        _stage("spots aligned", t_start)
        if not wsis:
            raise InputError("the predictions hold no spots")
        n_elements = sum(w.n_spots for w in wsis) * inputs.pred.n_vars
        kernel = kernel_name(n_elements, load=False, choice=settings.kernel)
        # the kernels read cached WSIs in place (memory map) where the platform allows it
        mapped = settings.mmap and cfg.truth_normalize is None
        with WsiReader(
            inputs.pred, inputs.truth, inputs.layer, wsis, block_bytes=settings.block_bytes, mapped=mapped
        ) as reader:
            panel = _load_panel(inputs, cfg)  # 3. genes, pathways, HVG lists (WSI 0 is being read)
            _stage("genes and pathways aligned", t_start)
            kernel = kernel_name(n_elements, choice=settings.kernel) if kernel == "numba" else kernel
            n_threads = settings.threads or default_threads()
            if kernel == "numba":  # pyarrow (for writing) imports next to the GIL-free compiled loops;
                _import_ahead("pyarrow")  # next to the numpy kernel's many short calls it would slow them
            per = score_wsis(
                reader,
                panel.gmap,
                (inputs.truth.n_vars, inputs.pred.n_vars),
                cfg=cfg,
                threads=n_threads,
                kernel=kernel,
            )  # 4. stream WSIs through the kernel
        inputs.check_unchanged()
        _stage("WSIs scored", t_start)
        cfg = cfg.replace(collection_id=panel.collection.collection_id)
        cohort = _reduce(per, panel, wsis, cfg)  # 5. cohort numbers
        tables = build_tables(per, cohort, panel, wsis, cfg)  # 6. long tables
        summary = _summary(inputs, panel, per, cohort, wsis, cfg)
        _stage("tables built", t_start)
        run_info = _run_info(t_start, kernel, n_threads, reader.counts, inputs.checks)
    result = ScoreResult(tables, summary=summary, run_info=run_info)
    logger.info(
        "%s: hvg macro %.4f, micro %.4f, GPC %s",
        inputs.model,
        cohort.hvg_macro,
        cohort.hvg_micro,
        ", ".join(f"{c} {v:.4f}" for c, v in summary["headline"]["gpc"].items() if v is not None),
    )
    if out is not None:  # 7. the run folder, atomically
        result.write(out, overwrite=overwrite, inputs=_input_paths(predictions, truth, cfg))
    return result


def _input_paths(predictions, truth, cfg: ScoreConfig) -> list:
    """The files a run reads (the output may neither be nor hold one of them)."""
    paths = [predictions, truth, *(cfg.pathways or ())]
    if isinstance(cfg.hvg, str) and not cfg.hvg.isdigit():
        paths.append(cfg.hvg)
    return [p for p in paths if isinstance(p, str | Path)]


def _stage(what: str, t_start: float) -> None:
    logger.debug("%s at %.3f s", what, time.perf_counter() - t_start)


def _summary(inputs: _Inputs, panel: _Panel, per, cohort: _Cohort, wsis, cfg: ScoreConfig) -> dict:
    """``summary.json``: headline numbers, counts, the config and provenance."""
    from .genes import table_info

    paths, gmap = cohort.paths, panel.gmap
    coll_col = np.asarray([s.collection for s in panel.sets], dtype=object)
    wsi_types = [w.cancer_type for w in wsis]

    def coll_mean(c):
        sel = paths.ok & (coll_col == c) & np.isfinite(paths.gpc)
        return float(paths.gpc[sel].mean()) if sel.any() else None

    by_level = {}
    for lv in range(1, cfg.n_levels + 1):
        sel = (cohort.pathway_level == lv) & np.isfinite(paths.gpc)
        by_level[str(lv)] = float(paths.gpc[sel].mean()) if sel.any() else None
    headline = {
        "hvg_pcc_macro": cohort.hvg_macro,
        "hvg_pcc_micro": cohort.hvg_micro,
        "gpc": {c: coll_mean(c) for c in panel.collection.collections},
        "gpc_hallmark": coll_mean("hallmark"),
        "gpc_go": coll_mean("go"),
        "gpc_by_variance_level": by_level,
    }
    cl = cohort.clustering
    if cl is not None:
        headline |= {
            "ami": cl["predictions"]["ami"],
            "ari": cl["predictions"]["ari"],
            "ami_truth": cl["truth"]["ami"],
            "ari_truth": cl["truth"]["ari"],
        }
    r_mat, flags = per.r, per.flags
    counts = {
        "n_wsi": len(wsis),
        "n_spots": int(sum(w.n_spots for w in wsis)),
        "n_cancer_types": len(per.variance_by_type),
        "n_genes_scored": int(cohort.scored_gene.sum()),
        "n_gene_wsi_pairs": int(r_mat.size),
        "n_gene_wsi_nan": int((~np.isfinite(r_mat)).sum()),
        "n_truth_constant": int((flags == TRUTH_CONSTANT).sum()),
        "n_prediction_constant": int((flags == PREDICTION_CONSTANT).sum()),
        "n_pathways": len(panel.sets),
        "n_pathways_scored": int(paths.ok.sum()),
        "n_pathways_too_few_genes": int((paths.status == "too_few_genes").sum()),
        "n_pathways_no_genes_in_panel": int((paths.status == "no_genes_in_panel").sum()),
        "n_pathway_genes_ambiguous": panel.memb.n_ambiguous,
        **gmap.counts,
    }
    warnings = [*gmap.warnings, *per.warnings, *_outcome_warnings(paths, panel, cfg, cohort, wsis)]
    sums = inputs.checks.get()
    pred, tsrc = inputs.pred, inputs.truth
    coll = panel.collection
    return {
        "model": inputs.model,
        "control": inputs.control,
        "gpc_bench_version": __version__,
        "headline": headline,
        "counts": counts,
        "cancer_types": {c: wsi_types.count(c) for c in sorted(per.variance_by_type)},
        "variance_levels": {
            "method": cfg.variance_bins,
            "n_levels": cfg.n_levels,
            "ddof": 1,
            "thresholds": cohort.thresholds.tolist(),
        },
        "hvg": cohort.hvg_info,
        "clustering": cl,
        "pathways": {
            "collection_id": coll.collection_id,
            "collections": {c: int((coll_col == c).sum()) for c in coll.collections},
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
                if not inputs.same_file
                else f"layers/{TRUTH_LAYER}",
                "sha256": sums["truth"] if not inputs.same_file else sums["predictions"],
                "gene_id_style": gmap.truth_style,
            },
        },
        "gene_table": table_info(),
        "config": cfg.to_dict(),
        "protocol": {"name": cfg.protocol, "deviations_from_published": deviations(cfg)},
        "warnings": warnings,
    }


def _outcome_warnings(
    paths: PathwayScores, panel: _Panel, cfg: ScoreConfig, cohort=None, wsis=()
) -> list[str]:
    """Warnings about the result itself, logged loudly and recorded in ``summary.json``."""
    out = []
    types = [w.cancer_type for w in wsis]
    single = sorted(t for t in set(types) if types.count(t) < 2)
    if single and len(set(types)) > 1:
        out.append(
            f"cancer type(s) {single} have a single WSI: their bootstrap intervals in a leaderboard are "
            "meaningless (a resample within the type always repeats that WSI)"
        )
    cl = None if cohort is None else cohort.clustering
    if cl is not None:
        k, n = len(set(types)), cl["n_items"]
        if k >= 2 and n < 2 * k:
            out.append(
                f"clustering {n} items into {k} cancer types cannot discriminate: with fewer than two "
                "items per group, AMI/ARI come out (nearly) the same for every input"
            )
    if not paths.ok.any():
        n_in = panel.memb.n_in_panel
        out.append(
            f"no pathway could be scored: {len(panel.gmap.genes):,} genes are shared by both files, and no "
            f"pathway has at least {max(cfg.min_genes, 1)} of them with a defined r (the most any has is "
            f"{int(paths.n_scored.max(initial=0))}; {int((n_in > 0).sum())} of {len(n_in)} pathways have "
            "any gene in the panel); GPC is undefined"
        )
    for w in out:
        logger.warning("%s", w)
    return out


def _run_info(t_start: float, kernel: str, threads: int, reads: dict, checks: _Checksums) -> dict:
    """``run_info.json``: how the run went (host, versions, kernel, reads); never compared."""
    import h5py
    import pyarrow

    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "elapsed_s": round(time.perf_counter() - t_start, 3),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "pyarrow": pyarrow.__version__,
        "kernel": f"{kernel} shifted-sum float64, {threads} thread(s)",
        "matrix_reads": reads,
        "sha256": {k: {True: "cached", False: "computed"}.get(v) for k, v in checks.cached.items()},
        "argv": sys.argv,
    }
