"""GPC against PAC: whether a model predicts a pathway's genes one by one, and its activity map."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..io.run import Run, load_run
from ..metrics.registry import n_levels
from ._base import level_colorbar, level_panel, new_axes

if TYPE_CHECKING:
    import matplotlib.axes
    import matplotlib.figure

    from ..result import Result


def gpc_vs_pac(
    run: str | Path | Result, *, ax: matplotlib.axes.Axes | None = None, name: str | None = None
) -> matplotlib.figure.Figure:
    """One point per scored pathway: GPC (x) against PAC (y), one panel per collection, coloured by
    variance level.

    Parameters
    ----------
    run
        A run folder (or :class:`~gpc_bench.io.run.Run`) with the ``pac`` column.
    ax
        One Axes per collection (Hallmark first), or None for a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Each panel's points carry the gid ``points-<collection>``, its annotation
        ``annotation-<collection>`` and the colour bar ``colorbar``.
    """
    from .._errors import InputError

    run = run if isinstance(run, Run) else load_run(run)
    ps = run.pathway_scores
    if "pac" not in ps or not np.isfinite(ps["pac"].to_numpy(dtype=np.float64)).any():
        raise InputError(
            f"run {run.name} has no PAC (scored from correlations, or before pathway activities)",
            "score the predictions file itself with this gpc-bench",
        )
    ps = ps[(ps["status"] == "ok") & ps["pac"].notna()]
    colls = sorted(set(ps["collection"]), key=lambda c: (c != "hallmark", c != "go", c))
    fig, axes = new_axes(ax, max(len(colls), 1))
    n = n_levels([run.summary])
    mappable = None
    for axis, coll in zip(axes, colls, strict=False):
        d = ps[ps["collection"] == coll]
        x, y = d["gpc"].to_numpy(np.float64), d["pac"].to_numpy(np.float64)
        lv = d["variance_level"].fillna(0).to_numpy(np.float64)
        above = int((y > x).sum())
        text = f"PAC above GPC for {above}/{len(x)}; mean GPC {np.mean(x):.3f}, PAC {np.mean(y):.3f}"
        mappable, _ = level_panel(axis, x, y, lv, coll, text, n, fontsize=8)
        axis.set_xlabel("GPC (genes one by one)")
        axis.set_ylabel("PAC (activity map)")
    if mappable is not None:
        level_colorbar(fig, mappable, axes, n)
    fig.suptitle(name or run.name, fontsize=10)
    return fig
