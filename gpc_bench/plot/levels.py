"""GPC by variance level for several models, and the gene variance density with level thresholds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..io.run import Run, load_run
from ..metrics.registry import n_levels
from ._base import new_axes

if TYPE_CHECKING:
    import matplotlib.axes
    import matplotlib.figure

    from ..result import Result


def _run(r) -> Run:
    return r if isinstance(r, Run) else load_run(r)


def _level_draws(run: Run, n: int, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """GPC per level under WSI bootstrap draws (within cancer types), and pathways per level."""
    from ..compare.stats import bootstrap_weights, nanmean, weighted_mean

    ps = run.pathway_scores
    wide = run.pathway_wsi_scores.pivot(index=["collection", "pathway"], columns="sample_id", values="score")
    keys = list(zip(ps["collection"], ps["pathway"], strict=True))
    wide = wide.reindex(keys)
    lv = ps["variance_level"].fillna(0).to_numpy(dtype=np.int64)
    hvg = run.hvg_scores.assign(sample_id=lambda d: d["sample_id"].astype(str)).set_index("sample_id")
    types = [str(hvg.loc[str(w), "cancer_type"]) for w in wide.columns]
    weights = bootstrap_weights(types, n_boot, seed)
    s = weighted_mean(wide.to_numpy(dtype=np.float64), weights)  # (pathways, draws)
    draws = np.vstack([nanmean(s[lv == k], axis=0) if (lv == k).any() else np.full(n_boot, np.nan)
                       for k in range(1, n + 1)])  # fmt: skip
    return draws, np.bincount(lv, minlength=n + 1)[1:]


#: a level holding fewer pathways than this is drawn hollow: its mean rests on too few sets
MIN_PATHWAYS_PER_LEVEL = 3


def levels(
    runs: Sequence[str | Path | Result],
    *,
    ax: matplotlib.axes.Axes | None = None,
    n_boot: int = 200,
    seed: int = 0,
    controls: Sequence[str] = (),
) -> matplotlib.figure.Figure:
    """GPC (all collections) at each variance level, one line per model, with bootstrap bands.

    Controls (``controls``, or runs whose predictions ``gpc-bench controls`` wrote) are drawn apart:
    thin grey dashed lines without bands, listed after the models, so that they do not squash the
    models' scale. A level with fewer than :data:`MIN_PATHWAYS_PER_LEVEL` pathways is drawn with
    hollow markers and its count in red.

    Parameters
    ----------
    runs
        Run folders (or :class:`~gpc_bench.io.run.Run`), scored with the same number of levels.
    n_boot
        WSI bootstrap draws (within cancer types) for the 95% bands; 0 for none.
    seed
        Seed of the draws.
    controls
        Model names to draw as controls.

    Returns
    -------
    matplotlib.figure.Figure
        Each model's line carries the gid ``level-line-<model>`` (``control-line-<model>`` for a
        control), its band ``level-band-<model>``, the hollow markers of thin levels
        ``thin-levels-<model>``. The x tick labels give the number of pathways at each level (of
        the first run).
    """
    import warnings

    fig, (axis,) = new_axes(ax, 1, width=5.8, height=4.2)
    runs = [_run(r) for r in runs]
    from ..compare.comparable import require_comparable

    require_comparable(runs)
    is_control = {r.name: r.name in set(controls) or bool(r.summary.get("control")) for r in runs}
    runs = sorted(runs, key=lambda r: is_control[r.name])  # models first, in the given order
    x = np.arange(1, n_levels([r.summary for r in runs]) + 1)
    counts = None
    for r in runs:
        by = r.summary["headline"].get("gpc_by_variance_level", {})
        y = np.array([np.nan if by.get(str(k)) is None else by[str(k)] for k in x], dtype=float)
        ctl = is_control[r.name]
        n_per = _level_counts(r, len(x))
        counts = n_per if counts is None else counts
        if ctl:
            (line,) = axis.plot(
                x, y, ls="--", lw=1, color="0.55", marker="x", ms=3, label=f"{r.name} (control)"
            )
            line.set_gid(f"control-line-{r.name}")
            continue
        (line,) = axis.plot(x, y, marker="o", ms=4, label=r.name)
        line.set_gid(f"level-line-{r.name}")
        thin = (n_per > 0) & (n_per < MIN_PATHWAYS_PER_LEVEL)
        if thin.any():  # hollow markers over the filled ones
            pts = axis.scatter(
                x[thin], y[thin], s=30, facecolors="white", edgecolors=line.get_color(), zorder=3
            )
            pts.set_gid(f"thin-levels-{r.name}")
        if n_boot:
            draws, _ = _level_draws(r, len(x), n_boot, seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # levels without pathways
                lo, hi = np.nanpercentile(draws, [2.5, 97.5], axis=1)
            band = axis.fill_between(x, lo, hi, color=line.get_color(), alpha=0.18, lw=0)
            band.set_gid(f"level-band-{r.name}")
    axis.axhline(0, color="0.6", lw=0.6)
    axis.set_xticks(x)
    axis.set_xticklabels([f"{k}\n{c}" for k, c in zip(x, counts, strict=True)], fontsize=8)
    for label, c in zip(axis.get_xticklabels(), counts, strict=True):
        if 0 < c < MIN_PATHWAYS_PER_LEVEL:
            label.set_color("C3")
    axis.set_xlabel(
        f"variance level (1 = lowest); pathways per level below it (red, hollow: < {MIN_PATHWAYS_PER_LEVEL})"
    )
    axis.set_ylabel("GPC")
    band_note = f", 95% WSI bootstrap bands ({n_boot} draws)" if n_boot else ""
    axis.set_title(f"GPC by variance level{band_note}", fontsize=10)
    axis.legend(frameon=False, fontsize=8)
    return fig


def _level_counts(run: Run, n: int) -> np.ndarray:
    lv = run.pathway_scores["variance_level"].fillna(0).to_numpy(dtype=np.int64)
    return np.bincount(lv, minlength=n + 1)[1 : n + 1]


def variance(run: str | Path | Result, *, ax: matplotlib.axes.Axes | None = None) -> matplotlib.figure.Figure:
    """Density of gene variance (log10) with the level thresholds marked.

    Returns
    -------
    matplotlib.figure.Figure
        Threshold lines carry the gid ``threshold-<k>``.
    """
    r = _run(run)
    v = r.gene_variance["variance"].to_numpy(dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    fig, (axis,) = new_axes(ax, 1, width=5.5, height=3.5)
    lv = np.log10(v)
    axis.hist(lv, bins=60, density=True, color="0.75", edgecolor="none")
    if lv.size > 1 and np.ptp(lv) > 0:
        from scipy.stats import gaussian_kde

        grid = np.linspace(lv.min(), lv.max(), 200)
        axis.plot(grid, gaussian_kde(lv)(grid), color="0.2", lw=1)
    thresholds = r.summary.get("variance_levels", {}).get("thresholds", [])
    for k, t in enumerate(thresholds, start=1):
        if t and t > 0:
            axis.axvline(np.log10(t), color="C3", lw=0.7).set_gid(f"threshold-{k}")
    axis.set_xlabel("log10 gene variance (measured, all spots)")
    axis.set_ylabel("density")
    axis.set_title(f"{r.name}: {len(v)} genes, {len(thresholds)} thresholds")
    return fig
