"""Are runs comparable? Same config, truth, collection, WSIs and genes; and what ``--intersect`` recomputes.

A number is comparable only with one computed under the same config, against the same measured
expression, on the same pathway collection, WSIs and gene panel. :func:`check` lists every
difference with the option that resolves it; :func:`restrict` recomputes a run's pathway scores,
variance levels and HVG values on the WSIs and genes that several runs share, from its gene-level
tables, with the array functions of :mod:`gpc_bench.metrics`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .._errors import examples
from ..io.run import Run

logger = logging.getLogger(__name__)

#: option that resolves a difference in each config field
OPTIONS = {
    "constant_prediction": "--constant-prediction",
    "min_genes": "--min-genes",
    "variance_bins": "--variance-bins",
    "n_levels": "--levels",
    "hvg": "--hvg",
    "hvg_map": "--hvg-map",
    "cluster": "--cluster",
    "cluster_spots": "--cluster-spots",
    "truth_log1p": "--truth-log1p",
    "truth_normalize": "--truth-normalize",
    "seed": "--seed",
    "protocol": "--protocol",
    "splits": "--splits",
}
#: spot-level extras: a run without one simply lacks its columns, but two runs that both computed it
#: must have computed it the same way (PAC of ulm maps is not PAC of mean-z maps)
EXTRA_OPTIONS = {
    "activity": "--activity",
    "domains": "--domains",
    "domain_key": "--domain-key",
    "domain_clusters": "--domain-clusters",
}
#: options that only make the truth: compared through the recorded truth moments when those exist
TRUTH_OPTIONS = ("truth_log1p", "truth_normalize")
#: config fields that --intersect cannot reconcile (every number-changing option but the panel)
NOT_RECONCILABLE = tuple(OPTIONS)
#: relative tolerance of the truth check: the same counts normalised in float32 by one pipeline and
#: in float64 by another (``--truth-normalize``) agree to ~1e-7 relative; a different truth does not
TRUTH_RTOL = 1e-5
#: absolute tolerance per spot (mean: per value; M2: summed over the WSI's spots)
TRUTH_ATOL = 1e-6


def user_value(v: object) -> str:
    """An option value as a user types it on the command line (``none``, not ``None``)."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, list | tuple):
        return ",".join(map(str, v))
    return str(v)


@dataclass
class Comparison:
    """The outcome of :func:`check`.

    Attributes
    ----------
    refusals
        Differences that make the runs incomparable, each naming the option that resolves it.
    notes
        What was not verified or, with ``intersect``, what was dropped.
    genes, wsis
        The shared gene IDs (sorted) and WSIs (sorted).
    restricted
        Whether the runs must be recomputed on the shared genes or WSIs.
    """

    refusals: list
    notes: list
    genes: list
    wsis: list
    restricted: bool


def _config(run: Run) -> dict | None:
    cfg = run.summary.get("config")
    if cfg is None:
        return None
    cfg = dict(cfg)
    cfg.setdefault("protocol", "default")
    cfg["activity"] = {True: "mean-z", False: None}.get(cfg.get("activity"), cfg.get("activity"))
    # HVG lists and splits compare by content: the same list given by two paths is the same
    digest = (run.summary.get("hvg") or {}).get("lists_sha256")
    if digest is not None:
        cfg["hvg"] = f"lists {digest[:19]}"
    splits = (run.summary.get("protocol") or {}).get("splits")
    if splits is not None:
        cfg["splits"] = f"splits {splits['sha256'][:12]}"
    if cfg.get("cluster") is None:
        cfg.pop("seed", None)  # the seed only changes the clustering
        cfg.pop("cluster_spots", None)
    if cfg.get("cluster") != "spot":
        cfg.pop("cluster_spots", None)
    return cfg


def _genes(run: Run) -> list | None:
    if not run.has_table("gene_variance"):
        return None
    return list(run.gene_keys.values())


def _extras_differ(configs: dict) -> list[str]:
    """Refusals for spot-level extras that two runs both computed, in different ways."""
    out = []
    for key, option in EXTRA_OPTIONS.items():
        on = "activity" if key == "activity" else "domains"
        values = {n: c.get(key) for n, c in configs.items() if c.get(on) is not None}
        if key == "domain_clusters":  # only k-means has a cluster count
            values = {n: v for n, v in values.items() if configs[n].get("domains") == "kmeans"}
        if key == "domain_key":
            values = {n: v for n, v in values.items() if v is not None}
        if len(set(map(repr, values.values()))) > 1:
            listing = ", ".join(f"{n}: {user_value(v)}" for n, v in values.items())
            out.append(f"computed {key} differently ({listing}); re-score them with one {option}")
    return out


def check(runs: list[Run], intersect: bool, wsi_sets: dict, remedy: str = "pass --intersect") -> Comparison:
    """Compare runs; see :class:`Comparison`.

    Parameters
    ----------
    runs
        The runs.
    intersect
        Compare on what the runs share (genes and WSIs) instead of refusing differences there.
    wsi_sets
        model -> its WSIs.
    remedy
        How the caller's user compares what runs share (where ``--intersect`` helps).
    """
    refusals, notes = [], []
    # 1. config: every option that changes numbers
    configs = {r.name: _config(r) for r in runs}
    known = {n: c for n, c in configs.items() if c is not None}
    unverified = []
    if len(known) < len(configs):
        unverified.append(f"no recorded config for {sorted(set(configs) - set(known))}: options not compared")
    # the truth options only say how the measured values were made: where the recorded truth itself
    # can be compared (step 4), it is, and runs of one truth made two ways stay comparable
    truth_checked = all(r.has_truth_moments for r in runs)
    for key in OPTIONS:
        if truth_checked and key in TRUTH_OPTIONS:
            continue
        values = {n: c.get(key) for n, c in known.items() if key in c}
        if len(set(map(repr, values.values()))) > 1:
            listing = ", ".join(f"{n}: {user_value(v)}" for n, v in values.items())
            refusals.append(f"scored with different {key} ({listing}); re-score them with one {OPTIONS[key]}")
    refusals += _extras_differ(known)
    # 2. WSIs
    common = set.intersection(*wsi_sets.values())
    union = set.union(*wsi_sets.values())
    restricted = False
    if common != union:
        detail = "; ".join(
            f"{n} lacks {examples(sorted(union - s), 3)}" for n, s in wsi_sets.items() if union - s
        )
        if intersect:
            notes.append(
                f"restricted to the {len(common)} WSIs common to all runs ({len(union - common)} dropped)"
            )
            restricted = True
        else:
            refusals.append(
                f"scored on different WSI sets ({detail}); score every model on the same test WSIs, "
                f"or {remedy} to compare the common ones"
            )
    # 3. gene panels
    panels = {r.name: _genes(r) for r in runs}
    known_panels = {n: p for n, p in panels.items() if p is not None}
    genes = sorted(set.intersection(*(set(p) for p in known_panels.values()))) if known_panels else []
    if known_panels and any(set(p) != set(genes) for p in known_panels.values()):
        sizes = ", ".join(f"{n}: {len(p):,} genes" for n, p in known_panels.items())
        if intersect:
            notes.append(
                f"restricted to the {len(genes):,} genes shared by all runs ({sizes}); pathway scores, "
                "variance levels and HVGs recomputed on them"
            )
            restricted = True
        else:
            refusals.append(
                f"scored on different gene panels ({sizes}; {len(genes):,} shared): a pathway's score "
                f"averages over the genes in the panel, so every score changes with it; {remedy} "
                f"to compare the shared genes{_low_coverage(runs)}"
            )
    # 4. truth: the recorded moments of the measured values, on the shared WSIs and genes
    truth = _truth_differences(runs, sorted(common), genes)
    if truth is None:
        unverified.append("truth not verified: a run has no truth moments (older gpc-bench, or --gene-pcc)")
    elif truth:
        refusals.append(
            f"scored against different measured expression ({truth}); score every model against the "
            "same --truth (and the same --truth-log1p / --truth-normalize)"
        )
    return Comparison(refusals, notes + unverified, genes, sorted(common), restricted)


def _low_coverage(runs: list[Run]) -> str:
    """``; low coverage: ...`` naming the runs whose predictions cover under half the truth's genes."""
    from ..summary import MIN_GENES_COVERED

    low = []
    for r in runs:
        c = r.summary.get("counts", {})
        shared, truth = c.get("n_genes_shared"), c.get("n_genes_truth")
        if shared is not None and truth and shared / truth < MIN_GENES_COVERED:
            low.append(f"{r.name} predicts {shared:,} of the truth's {truth:,} genes")
    return f" (low coverage: {'; '.join(low)}; its scores are not comparable with full runs)" if low else ""


def require_comparable(runs: list[Run]) -> None:
    """Raise :class:`~gpc_bench.InputError` unless the runs are comparable as they are (for figures
    that put runs side by side; the leaderboard also offers ``--intersect``)."""
    from .._errors import InputError

    if len(runs) < 2:
        return
    wsi_sets = {r.name: set(r.hvg_scores["sample_id"].astype(str)) for r in runs}
    remedy = "use `gpc-bench leaderboard --intersect` or `report --intersect` (figures take runs as they are)"
    cmp = check(runs, intersect=False, wsi_sets=wsi_sets, remedy=remedy)
    ids = {r.name: r.summary.get("pathways", {}).get("collection_id") for r in runs}
    if len(set(ids.values())) > 1:
        listing = ", ".join(f"{n}: {c}" for n, c in ids.items())
        cmp.refusals.append(f"scored on different pathway collections ({listing}); use one --pathways")
    if cmp.refusals:
        raise InputError(
            "these runs are not comparable:\n  - " + "\n  - ".join(cmp.refusals),
            "each line says what resolves it (docs/comparing.md)",
        )


def _truth_differences(runs: list[Run], wsis: list, genes: list) -> str | None:
    """'' when every run saw the same truth on the shared WSIs and genes, a description otherwise,
    None when it cannot be told."""

    if not all(r.has_truth_moments for r in runs):  # older runs, or correlations only
        return None
    ref = None
    frames = {r.name: r.truth_moments for r in runs}
    for r in runs:
        t = frames[r.name]
        t = t.assign(gene=t["gene"].astype(str).map(r.gene_keys))
        t = t[t["sample_id"].astype(str).isin(wsis) & t["gene"].isin(genes)]
        t = t.assign(sample_id=t["sample_id"].astype(str), gene=t["gene"].astype(str))
        t = t.set_index(["sample_id", "gene"]).sort_index()
        if ref is None:
            ref = (r.name, t)
            continue
        name, a = ref
        if len(a) != len(t) or not a.index.equals(t.index):
            return f"{name} and {r.name} hold different spots or genes"
        if not np.array_equal(a["n_spots"].to_numpy(), t["n_spots"].to_numpy()):
            return f"{name} and {r.name} have different spot counts"
        n = a["n_spots"].to_numpy(np.float64)
        for col, atol in (("mean", TRUTH_ATOL), ("m2", TRUTH_ATOL * n)):
            x, y = a[col].to_numpy(np.float64), t[col].to_numpy(np.float64)
            bad = ~np.isclose(x, y, rtol=TRUTH_RTOL, atol=atol, equal_nan=True)
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                w, g = a.index[k]
                rel = abs(x[k] - y[k]) / max(abs(x[k]), abs(y[k]), 1e-300)
                return (
                    f"{name} and {r.name} differ at {int(bad.sum())} (WSI, gene) pairs, e.g. WSI {w!r}, "
                    f"gene {g!r}: {col} {x[k]:.10g} vs {y[k]:.10g} (relative difference {rel:.1e}, "
                    f"tolerance {TRUTH_RTOL:g})"
                )
    return ""


@dataclass
class Restricted:
    """A run recomputed on shared WSIs and genes: what the leaderboard reads."""

    scores: np.ndarray  # (n_pathways, n_wsi), pathways in ``keys`` order
    levels: np.ndarray  # (n_pathways,)
    hvg: np.ndarray  # (n_wsi,)
    wsi_values: dict  # declared per-WSI metric -> (n_wsi,)
    variants: dict  # declared gene metric -> ((n_pathways, n_wsi) scores, (n_wsi,) HVG PCC); pathway
    # metric -> ((n_pathways, n_wsi) values, None)


def restrict(run: Run, keys: list, wsis: list, genes: list, cancer_types: list) -> Restricted:
    """Re-evaluate a run on ``wsis`` and ``genes`` (canonical keys): its pathway x WSI scores,
    pathway variance levels and per-WSI HVG PCC, by :func:`gpc_bench.evaluate.reduce` on the
    run's recorded per-WSI statistics, under its recorded config.

    Pathways are the run's own matched panel genes (``pathway_genes``) that are shared; HVG lists
    are matched by the run's own gene ID or by symbol, as ``score`` does. ``cancer_types`` are
    those of ``wsis``, checked against the statistics.
    """
    from ..evaluate import reduce
    from ..io.gmt import GeneSet

    stats, key = run.stats, run.gene_keys
    pos = {key[g]: j for j, g in enumerate(stats.genes.astype(str).tolist()) if g in key}
    at = {w: i for i, w in enumerate(stats.sample_ids)}
    sub = stats.take([at[w] for w in wsis], [pos[g] for g in genes])
    if list(sub.cancer_types) != [str(c) for c in cancer_types]:
        raise ValueError(f"cancer types of {run.name} differ from the leaderboard's")
    sub.symbols = np.asarray(genes, dtype=object)  # matched by canonical key
    pg = run.pathway_genes
    pg = pg.assign(gene=pg["gene"].astype(str).map(key))
    pg = pg[pg["gene"].isin(set(genes))]
    by_path: dict = {k: [] for k in keys}
    for c, p, g in zip(pg["collection"], pg["pathway"], pg["gene"].astype(str), strict=True):
        if (c, p) in by_path:
            by_path[(c, p)].append(g)
    sets = [GeneSet(c, p, tuple(by_path[(c, p)])) for c, p in keys]
    cohort = reduce(sub, run.config, sets=sets)
    levels = cohort.pathway_level if cohort.pathway_level is not None else np.zeros(len(keys), np.int64)
    hvg = cohort.hvg_score if cohort.hvg_score is not None else np.full(len(wsis), np.nan)
    variants = {
        name: (v.paths.per_wsi.T, v.hvg_score if v.hvg_score is not None else np.full(len(wsis), np.nan))
        for name, v in cohort.variants.items()
    } | {name: (p.per_wsi.T, None) for name, p in cohort.pathway_values.items()}
    return Restricted(cohort.paths.per_wsi.T, levels.astype(np.int64), hvg, cohort.wsi_values, variants)
