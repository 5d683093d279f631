"""GPC by variance level for several models, and the gene variance density with level thresholds."""

from __future__ import annotations

import numpy as np

from ..io.run import Run, load_run
from ..metrics.registry import n_levels
from ._base import new_axes


def _run(r) -> Run:
    return r if isinstance(r, Run) else load_run(r)


def levels(runs, *, ax=None):
    """GPC (all collections) at each variance level, one line per model.

    Returns
    -------
    matplotlib.figure.Figure
        Each model's line carries the gid ``level-line-<model>``.
    """
    fig, (axis,) = new_axes(ax, 1, width=5.5)
    runs = [_run(r) for r in runs]
    x = np.arange(1, n_levels([r.summary for r in runs]) + 1)
    for r in runs:
        by = r.summary["headline"].get("gpc_by_variance_level", {})
        y = np.array([np.nan if by.get(str(k)) is None else by[str(k)] for k in x], dtype=float)
        (line,) = axis.plot(x, y, marker="o", ms=4, label=r.name)
        line.set_gid(f"level-line-{r.name}")
    axis.axhline(0, color="0.6", lw=0.6)
    axis.set_xticks(x)
    axis.set_xlabel("variance level (1 = lowest)")
    axis.set_ylabel("GPC")
    axis.legend(frameon=False, fontsize=8)
    return fig


def variance(run, *, ax=None):
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
