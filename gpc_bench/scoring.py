"""One scoring run, as named stages over one :class:`~gpc_bench.config.ScoreConfig`.

open and validate inputs -> align spots -> align genes, load pathways and HVG lists -> stream WSIs
through the kernel -> reduce to cohort numbers -> build long tables -> write the run folder.
:func:`score` shows the whole flow; each stage is a short function below it.
"""

from __future__ import annotations

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
from typing import TYPE_CHECKING

import numpy as np

from ._errors import InputError, examples
from ._per_wsi import PerWsi, score_wsis
from ._spot_extras import spot_annotation, spot_coordinates
from .config import ScoreConfig, resolve_config
from .evaluate import evaluate
from .io.align import GeneMap, align_genes, align_spots
from .io.checksum import file_sha256
from .io.gmt import GeneSet, PathwayCollection, check_pathway_paths, load_pathways
from .io.h5ad import AnnDataSource, H5adSource, open_source
from .io.runfolder import atomic_dir, check_out_dir
from .io.stream import WsiReader
from .metrics.activity import ActivityPlan
from .metrics.depth import depth_source
from .metrics.depth import describe as describe_depth
from .metrics.domains import DOMAINS
from .metrics.pathway import Membership, membership
from .metrics.pcc import kernel_name
from .result import Result
from .settings import Settings, default_threads
from .stats import MOMENTS, SpotProfiles, WsiStats, cohort_key, parse_shard, shard_indices

if TYPE_CHECKING:
    import anndata as ad

logger = logging.getLogger(__name__)

TRUTH_LAYER = "truth"
#: an opened input: an .h5ad file read with h5py, or an AnnData in memory
Source = H5adSource | AnnDataSource


class _Checksums:
    """sha256 of input files, on a background thread while scoring runs (reused when cached)."""

    def __init__(self, paths: dict[str, Path | None], enabled: bool, cache: Path) -> None:
        self.result: dict[str, str | None] = {k: None for k in paths}
        self.cached: dict[str, bool | None] = {k: None for k in paths}
        self._thread = None
        todo = {k: p for k, p in paths.items() if p is not None and enabled}
        if todo:

            def work():
                for k, p in todo.items():
                    self.result[k], self.cached[k] = file_sha256(p, cache=cache)

            self._thread = threading.Thread(target=work, daemon=True)
            self._thread.start()

    def get(self) -> dict[str, str | None]:
        if self._thread is not None:
            self._thread.join()
        return self.result


@dataclass
class _Inputs:
    """Stage 1: the two opened sources and what is known of them before any matrix is read."""

    pred: Source
    truth: Source
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
def _open_inputs(
    predictions, truth, name: str | None, checksum: bool, settings: Settings
) -> Iterator[_Inputs]:
    """Open both inputs and check their contract (files are closed on every path)."""
    pred = open_source(predictions, "predictions")
    tsrc = None
    try:
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
            _Checksums(paths, checksum, settings.resolved_cache_dir()),
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

    gmap: GeneMap
    collection: PathwayCollection
    sets: list[GeneSet]
    memb: Membership
    hvg_lists: dict | None
    hvg_n: int | None


def _load_panel(inputs: _Inputs, cfg: ScoreConfig, cancer_types=()) -> _Panel:
    """Align genes, load the pathways and match them to the panel, read the HVG lists (and check
    them against ``cancer_types`` before any scoring work)."""
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
            "pathways and panels are matched by HGNC symbol (Ensembl IDs on either side are mapped with "
            "the shipped table); check that both name human genes, or add var['gene_symbol'] to the panel",
        )
    hvg_lists = None
    if not cfg.hvg.isdigit():
        from .metrics.hvg import read_hvg_lists

        hvg_lists = read_hvg_lists(cfg.hvg, panel=(gmap.genes, gmap.symbols))
        if cancer_types:
            from .metrics.hvg import resolve_hvg

            types = sorted(set(cancer_types))
            resolve_hvg(types, {}, gmap.genes, gmap.symbols, 0, hvg_lists, cfg.hvg_names())
    return _Panel(gmap, coll, sets, memb, hvg_lists, int(cfg.hvg) if hvg_lists is None else None)


def collect(
    predictions: str | Path | ad.AnnData,
    truth: str | Path | ad.AnnData | None = None,
    *,
    config: ScoreConfig | None = None,
    name: str | None = None,
    checksum: bool = True,
    settings: Settings | None = None,
    shard: tuple[int, int] | str | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    **options,
) -> WsiStats:
    """Stage 1 of a run: stream each WSI once into per-WSI statistics (:class:`~gpc_bench.stats.WsiStats`).

    Parameters are those of :func:`score`, and

    shard
        ``(K, N)`` or ``"K/N"``: collect only shard K of N (:func:`gpc_bench.stats.shard_indices`);
        with ``out``, the statistics are written there as a partial run folder for
        :func:`gpc_bench.merge`.
    """
    stats, _ = _collect(predictions, truth, config, name, checksum, settings, shard, out, overwrite, options)
    if out is not None:
        with atomic_dir(
            out, overwrite=overwrite, kind="shard", inputs=_input_paths(predictions, truth, stats)
        ) as tmp:
            stats.write(tmp)
    return stats


def _collect(predictions, truth, config, name, checksum, settings, shard, out, overwrite, options):
    """:func:`collect`, and how the run went (``run_info``)."""
    t_start = time.perf_counter()
    cfg = resolve_config(config, **options)
    settings = settings or Settings.from_env()
    if isinstance(shard, str):
        shard = parse_shard(shard)
    if shard is not None and cfg.cluster == "spot":
        raise InputError(
            "--cluster spot samples spots over the whole cohort, which shards cannot merge exactly",
            "score the cohort in one run for spot-level clustering, or use --cluster wsi with --shard",
        )
    if out is not None:  # paths first: a wrong one must not cost a scoring pass
        paths = [p for p in (predictions, truth, *(cfg.pathways or ())) if isinstance(p, str | Path)]
        check_out_dir(out, overwrite, inputs=paths, kind="run" if shard is None else "shard")
    check_pathway_paths(cfg.pathways)
    with _open_inputs(predictions, truth, name, checksum, settings) as inputs:  # 1. open, validate
        _stage("inputs opened", t_start)
        wsis = align_spots(inputs.pred, inputs.truth, inputs.same_file)  # 2. spots
        _stage("spots aligned", t_start)
        if not wsis:
            raise InputError("the predictions hold no spots")
        # the kernel is chosen for the whole cohort, so that shards compute what one run would
        n_elements = sum(w.n_spots for w in wsis) * inputs.pred.n_vars
        cohort = {"n_wsi": len(wsis), "key": cohort_key(w.sample_id for w in wsis)}
        if shard is not None:
            wsis = [wsis[i] for i in shard_indices(len(wsis), *shard)]
        kernel = kernel_name(n_elements, load=False, choice=settings.kernel)
        # the kernels read cached WSIs in place (memory map) where the platform allows it
        mapped = settings.mmap and cfg.truth_normalize is None
        with WsiReader(
            inputs.pred, inputs.truth, inputs.layer, wsis, block_bytes=settings.block_bytes, mapped=mapped
        ) as reader:
            # 3. genes, pathways, HVG lists (checked against the cohort's cancer types)
            panel = _load_panel(inputs, cfg, [w.cancer_type for w in wsis])
            _stage("genes and pathways aligned", t_start)
            kernel = kernel_name(n_elements, choice=settings.kernel) if kernel == "numba" else kernel
            n_threads = settings.threads or default_threads()
            depth_info, depth = depth_source(inputs.truth.obs_column, cfg.depth_key)
            per = (
                score_wsis(
                    reader,
                    panel.gmap,
                    (inputs.truth.n_vars, inputs.pred.n_vars),
                    cfg=cfg,
                    threads=n_threads,
                    kernel=kernel,
                    depth=depth,
                    plan=ActivityPlan.from_membership(panel.memb, len(panel.sets)) if cfg.activity else None,
                    coords=spot_coordinates(inputs.truth) if cfg.spatial else None,
                    annotation=spot_annotation(inputs.truth, cfg.domain_key) if cfg.domain_key else None,
                )
                if wsis
                else None
            )  # 4. stream WSIs through the kernel
        inputs.check_unchanged()
        _stage("WSIs scored", t_start)
        cfg = cfg.replace(collection_id=panel.collection.collection_id)
        stats = _stats(inputs, panel, per, wsis, cfg, cohort, shard)
        stats.meta["depth"] = depth_info | {"description": describe_depth(depth_info)}
        run_info = _run_info(t_start, kernel, n_threads, reader.counts, inputs.checks)
    return stats, run_info


def _stats(inputs: _Inputs, panel: _Panel, per, wsis, cfg: ScoreConfig, cohort: dict, shard) -> WsiStats:
    """The statistics of the streamed WSIs, with the provenance evaluation and merging need."""
    n_genes = len(panel.gmap.genes)
    if per is None:  # a shard past the last WSI
        per = PerWsi(np.zeros((0, n_genes)), np.zeros((0, n_genes), np.int8), np.zeros(0, np.int64),
                     np.zeros((0, len(MOMENTS), n_genes)), np.zeros((0, 2)),
                     np.zeros((0, 7, len(panel.sets))) if cfg.activity else None)  # fmt: skip
    spots = None
    if cfg.cluster == "spot":
        spots = SpotProfiles(
            np.concatenate(per.spot_pred), np.concatenate(per.spot_truth), np.asarray(per.spot_labels, object)
        )
    gmap = panel.gmap
    sums = inputs.checks.get()
    pred, tsrc = inputs.pred, inputs.truth
    meta = {
        "model": inputs.model,
        "control": inputs.control,
        "config": cfg.to_dict(),
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
        "gene_counts": gmap.counts,
        "gene_warnings": gmap.warnings,
        "scale_check": {"sample_id": wsis[0].sample_id if wsis else None, "warnings": per.warnings},
        "cohort": cohort,
        "shard": None if shard is None else {"k": shard[0], "n": shard[1]},
    }
    return WsiStats(
        sample_ids=[w.sample_id for w in wsis],
        cancer_types=[w.cancer_type for w in wsis],
        n_spots=per.n,
        genes=np.asarray(gmap.genes).astype(str).astype(object),
        symbols=np.asarray(gmap.symbols).astype(str).astype(object),
        r=per.r,
        flags=per.flags,
        moments=per.moments,
        depth=per.depth,
        collection=panel.collection,
        hvg_lists=panel.hvg_lists,
        meta=meta,
        spots=spots,
        activity=per.activity,
        moran=_or_empty(per.moran, (0, 2, n_genes)) if cfg.spatial else None,
        activity_moran=_or_empty(per.activity_moran, (0, 2, len(panel.sets)))
        if cfg.spatial and cfg.activity
        else None,
        domains=_or_empty(per.domains, (0, len(DOMAINS))) if cfg.domains else None,
    )


def _or_empty(a, shape) -> np.ndarray:
    """``a``, or an empty array of ``shape`` for a shard past the last WSI (so that parts merge)."""
    return a if a is not None else np.full(shape, np.nan)


def score(
    predictions: str | Path | ad.AnnData,
    truth: str | Path | ad.AnnData | None = None,
    *,
    config: ScoreConfig | None = None,
    name: str | None = None,
    checksum: bool = True,
    settings: Settings | None = None,
    threads: int | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    **options,
) -> Result:
    """Score predicted expression against measured expression.

    Collects the per-WSI statistics (:func:`collect`) and evaluates them
    (:func:`gpc_bench.evaluate.evaluate`).

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
    gpc_bench.result.Result
    """
    t_start = time.perf_counter()
    settings = (settings or Settings.from_env()).replace(**({} if threads is None else {"threads": threads}))
    stats, run_info = _collect(
        predictions, truth, config, name, checksum, settings, None, out, overwrite, options
    )
    result = evaluate(stats, run_info=run_info)  # 5-6. cohort numbers, tables, summary
    run_info["elapsed_s"] = round(time.perf_counter() - t_start, 3)
    if out is not None:  # 7. the run folder, atomically
        result.write(out, overwrite=overwrite, inputs=_input_paths(predictions, truth, stats))
    return result


def _input_paths(predictions, truth, stats: WsiStats) -> list:
    """The files a run reads (the output may neither be nor hold one of them)."""
    cfg = stats.meta["config"]
    paths = [predictions, truth, *(cfg["pathways"] or ())]
    if isinstance(cfg["hvg"], str) and not cfg["hvg"].isdigit():
        paths.append(cfg["hvg"])
    return [p for p in paths if isinstance(p, str | Path)]


def _stage(what: str, t_start: float) -> None:
    logger.debug("%s at %.3f s", what, time.perf_counter() - t_start)


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
