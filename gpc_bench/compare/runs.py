"""Several run folders as aligned matrices: the common WSIs and pathways, checked for compatibility."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .._errors import InputError
from ..io.run import Run, load_run
from ..metrics.registry import n_levels
from .comparable import check, restrict

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)


@dataclass
class RunSet:
    """Runs aligned on the same WSIs (columns) and pathways (rows).

    Attributes
    ----------
    models
        Model names, in the order given.
    wsis, cancer_types
        The common WSIs (sorted by sample_id) and their cancer types.
    pathways
        DataFrame: collection, pathway (the common pathways, in the first run's order).
    scores
        model -> ``(n_pathways, n_wsi)`` per-WSI pathway scores (NaN where undefined).
    levels
        model -> ``(n_pathways,)`` pathway variance level (0: none), from each run.
    hvg
        model -> ``(n_wsi,)`` per-WSI HVG PCC.
    runs
        model -> the :class:`~gpc_bench.io.run.Run`.
    controls
        Models marked as controls.
    notes
        What ``intersect`` dropped, in words.
    collection_id
        The runs' pathway collection (None when they differ).
    n_levels
        Variance levels of the runs' config.
    wsi_values
        model -> declared per-WSI metric (:data:`gpc_bench.metrics.registry.WSI_METRICS`) -> its
        ``(n_wsi,)`` values (a metric a run lacks is left out).
    variants
        model -> declared gene metric (:data:`gpc_bench.metrics.registry.GENE_METRICS`) -> its
        ``(n_pathways, n_wsi)`` pathway scores and ``(n_wsi,)`` HVG PCC (NaN where a run lacks it);
        and declared pathway metric (``PATHWAY_METRICS``) -> its ``(n_pathways, n_wsi)`` values and
        ``None``.
    """

    models: list[str]
    wsis: list[str]
    cancer_types: list[str]
    pathways: pd.DataFrame
    scores: dict[str, np.ndarray]
    levels: dict[str, np.ndarray]
    hvg: dict[str, np.ndarray]
    runs: dict[str, Run]
    controls: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    collection_id: str | None = None
    n_levels: int = 10
    wsi_values: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    variants: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)

    @property
    def collections(self) -> list[str]:
        return list(dict.fromkeys(self.pathways["collection"]))


def _as_run(r) -> Run:
    return r if isinstance(r, Run) else load_run(r)


def _collections(runs: list, intersect: bool) -> tuple[dict, list[str], list[str]]:
    """Each run's collection id, and the note or refusal when they differ."""
    notes: list[str] = []
    refusals: list[str] = []
    ids = {r.name: r.summary.get("pathways", {}).get("collection_id") for r in runs}
    if len(set(ids.values())) > 1:
        listing = ", ".join(f"{n}: {c}" for n, c in ids.items())
        if not intersect:
            refusals.append(
                f"scored on different pathway collections ({listing}); re-score them on one --pathways, "
                "or pass --intersect to compare the pathways they share by name"
            )
        else:
            notes.append(f"scored on different pathway collections ({listing}); compared on shared names")

    return ids, notes, refusals


def load_runs(paths: Sequence, *, intersect: bool = False, controls: Iterable[str] = ()) -> RunSet:
    """Read run folders and align them.

    Parameters
    ----------
    paths
        Run folders (or :class:`Run` objects) written by ``gpc-bench score``.
    intersect
        Compare on what the runs share (WSIs, genes, pathway names) instead of refusing runs that
        differ there; pathway scores, variance levels and HVGs are then recomputed on the shared
        genes and WSIs (:func:`gpc_bench.compare.comparable.restrict`).
    controls
        Model names to mark as controls, in addition to runs whose predictions were written
        by ``gpc-bench controls`` (their summary says so).

    Raises
    ------
    InputError
        Fewer than one run, duplicated model names, or runs that are not comparable
        (:func:`gpc_bench.compare.comparable.check`): different config, truth, collection, WSIs or
        genes (the last three accepted with ``intersect``).
    """
    runs = [_as_run(p) for p in paths]
    if not runs:
        raise InputError("no run folders given", "pass folders written by gpc-bench score")
    names = [r.name for r in runs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(
            f"model names {dup} appear more than once",
            "give each run a distinct name (gpc-bench score --name)",
        )
    ids, notes, refusals = _collections(runs, intersect)
    hvg_tabs = {r.name: r.hvg_scores for r in runs}
    wsi_sets = {n: set(t["sample_id"].astype(str)) for n, t in hvg_tabs.items()}
    cmp = check(runs, intersect, wsi_sets)
    refusals += cmp.refusals  # every difference at once, each with what resolves it
    if refusals:
        raise InputError(
            "these runs are not comparable:\n  - " + "\n  - ".join(refusals),
            "each line says what resolves it (docs/comparing.md)",
        )
    notes += cmp.notes
    if not cmp.wsis:
        raise InputError("the runs share no WSI", "check that they were scored on the same test split")
    wsis = cmp.wsis
    first = hvg_tabs[names[0]].assign(sample_id=lambda d: d["sample_id"].astype(str)).set_index("sample_id")
    cancer_types = [str(first.loc[w, "cancer_type"]) for w in wsis]

    pw_tabs = {r.name: r.pathway_scores for r in runs}
    keysets = [list(zip(t["collection"], t["pathway"], strict=True)) for t in pw_tabs.values()]
    shared = set.intersection(*(set(k) for k in keysets))
    keys = [k for k in keysets[0] if k in shared]
    if len(keys) < max(len(k) for k in keysets):
        notes.append(f"restricted to the {len(keys)} pathways common to all runs")
    if not keys:
        raise InputError("the runs share no pathway", "score them on the same pathway collection")
    import pandas as pd

    pathways = pd.DataFrame(keys, columns=["collection", "pathway"])
    scores, levels, hvg, values, variants = {}, {}, {}, {}, {}
    recompute = cmp.restricted and all("config" in r.summary for r in runs)
    for r in runs:
        if recompute:  # on the shared genes and WSIs, from the gene-level tables
            rr = restrict(r, keys, wsis, cmp.genes, cancer_types)
            scores[r.name], levels[r.name], hvg[r.name] = rr.scores, rr.levels, rr.hvg
            values[r.name], variants[r.name] = rr.wsi_values, rr.variants
            continue
        values[r.name] = _wsi_values(r, wsis)
        variants[r.name] = _variants(r, keys, wsis)
        scores[r.name] = _pathway_matrix(r, keys, wsis)
        lv = pw_tabs[r.name].set_index(["collection", "pathway"])["variance_level"]
        levels[r.name] = lv.reindex(keys).fillna(0).to_numpy(dtype=np.int64)
        h = hvg_tabs[r.name].assign(sample_id=lambda d: d["sample_id"].astype(str)).set_index("sample_id")
        hvg[r.name] = h["pcc"].reindex(wsis).to_numpy(dtype=np.float64)
    marked = set(controls) | {r.name for r in runs if r.summary.get("control")}
    unknown = set(controls) - set(names)
    if unknown:
        raise InputError(f"--control names {sorted(unknown)} are not among the runs {names}")
    for note in notes:
        logger.info("%s", note)  # the CLI prints the notes after the table
    return RunSet(
        models=names,
        wsis=wsis,
        cancer_types=cancer_types,
        pathways=pathways,
        scores=scores,
        levels=levels,
        hvg=hvg,
        runs={r.name: r for r in runs},
        controls=marked,
        notes=notes,
        collection_id=next(iter(ids.values())) if len(set(ids.values())) == 1 else None,
        n_levels=n_levels([r.summary for r in runs]),
        wsi_values=values,
        variants=variants,
    )


def _wsi_values(run: Run, wsis: list[str]) -> dict[str, np.ndarray]:
    """The run's declared per-WSI metrics on ``wsis`` (none for runs written before them)."""
    if not run.has_table("wsi_metrics"):
        return {}
    t = run.table("wsi_metrics").astype({"sample_id": str, "metric": str})
    wide = t.pivot(index="sample_id", columns="metric", values="value").reindex(wsis)
    return {m: wide[m].to_numpy(dtype=np.float64) for m in wide.columns}


def _pathway_matrix(run: Run, keys, wsis, column: str = "score") -> np.ndarray:
    t = run.pathway_wsi_scores
    if column not in t:  # a run written before the column existed
        return np.full((len(keys), len(wsis)), np.nan)
    t = t.assign(sample_id=t["sample_id"].astype(str))
    wide = t.pivot(index=["collection", "pathway"], columns="sample_id", values=column)
    return wide.reindex(index=keys, columns=wsis).to_numpy(dtype=np.float64)


def _variants(run: Run, keys, wsis) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The run's declared gene and pathway metrics on ``keys`` and ``wsis``, from its tables."""
    from ..metrics.registry import GENE_METRICS, PATHWAY_METRICS

    h = run.hvg_scores.assign(sample_id=lambda d: d["sample_id"].astype(str)).set_index("sample_id")
    out = {}
    for m in GENE_METRICS:
        col = f"pcc_{m.name}"
        hvg = h[col].reindex(wsis).to_numpy(np.float64) if col in h else np.full(len(wsis), np.nan)
        out[m.name] = (_pathway_matrix(run, keys, wsis, f"gpc_{m.name}"), hvg)
    for p in PATHWAY_METRICS:
        out[p.name] = (_pathway_matrix(run, keys, wsis, p.name), None)
    return out
