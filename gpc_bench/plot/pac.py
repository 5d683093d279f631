"""GPC against PAC: whether a model predicts a pathway's genes one by one, and its activity map."""

from __future__ import annotations

import numpy as np

from ..io.run import Run, load_run
from ..metrics.registry import n_levels
from ._base import level_cmap, new_axes


def gpc_vs_pac(run, *, ax=None, name: str | None = None):
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
    cmap, norm = level_cmap(n)
    mappable = None
    for axis, coll in zip(axes, colls, strict=False):
        d = ps[ps["collection"] == coll]
        x, y = d["gpc"].to_numpy(np.float64), d["pac"].to_numpy(np.float64)
        lv = d["variance_level"].fillna(0).to_numpy(np.float64)
        mappable = axis.scatter(x, y, c=lv, cmap=cmap, norm=norm, s=18, edgecolors="none", alpha=0.9)
        mappable.set_gid(f"points-{coll}")
        lo = min(float(np.nanmin(np.r_[x, y, 0.0])) - 0.02, 0.0)
        hi = max(float(np.nanmax(np.r_[x, y])) + 0.02, 0.1)
        axis.plot([lo, hi], [lo, hi], color="0.4", lw=0.8, ls="--", zorder=0)
        axis.set_xlim(lo, hi)
        axis.set_ylim(lo, hi)
        axis.set_aspect("equal")
        above = int((y > x).sum())
        text = f"PAC above GPC for {above}/{len(x)}; mean GPC {np.mean(x):.3f}, PAC {np.mean(y):.3f}"
        t = axis.text(0.5, 1.01, text, transform=axis.transAxes, va="bottom", ha="center", fontsize=8)
        t.set_gid(f"annotation-{coll}")
        axis.set_title({"hallmark": "Hallmark", "go": "GO"}.get(coll, coll), pad=16)
        axis.set_xlabel("GPC (genes one by one)")
        axis.set_ylabel("PAC (activity map)")
    if mappable is not None:
        cb = fig.colorbar(mappable, ax=axes, ticks=range(1, n + 1), shrink=0.8)
        cb.set_label("variance level")
        cb.ax.set_gid("colorbar")
    fig.suptitle(name or run.name, fontsize=10)
    return fig
