"""Figure 2 of the paper: one model's pathway GPC against another's, coloured by variance level."""

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


def _scores(run: Run):
    t = run.pathway_scores
    return t[t["status"] == "ok"].set_index(["collection", "pathway"])


PREFIXES = ("HALLMARK_", "GOBP_", "GOCC_", "GOMF_", "GO_")


def short_name(name: str) -> str:
    """A pathway name without its collection prefix (``GOBP_``, ``HALLMARK_``, ...)."""
    for p in PREFIXES:
        if str(name).startswith(p):
            return str(name)[len(p) :]
    return str(name)


def _repel(axis, labels, x, y, note) -> None:
    """Move the labels off each other, the points and the annotation (adjustText), with leader lines."""
    from adjustText import adjust_text

    axis.figure.canvas.draw()  # adjustText needs the final layout to measure the texts
    adjust_text(
        labels,
        x=x,
        y=y,
        objects=[note.get_window_extent()],
        ax=axis,
        arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.5},
    )


def scatter(
    run_a: str | Path | Result,
    run_b: str | Path | Result,
    *,
    label_top: int = 0,
    ax: matplotlib.axes.Axes | None = None,
    name_a: str | None = None,
    name_b: str | None = None,
) -> matplotlib.figure.Figure:
    """Pathway GPC of ``run_a`` (y) against ``run_b`` (x), one panel per collection.

    Parameters
    ----------
    run_a, run_b
        Run folders (or :class:`~gpc_bench.io.run.Run`).
    label_top
        Name the ``label_top`` pathways with the largest absolute difference in each panel.
    ax
        One Axes per collection (Hallmark first), or None for a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Each panel's points carry the gid ``points-<collection>``, the colour bar ``colorbar``
        and the annotation ``annotation-<collection>`` (findable in SVG output).
    """
    run_a = run_a if isinstance(run_a, Run) else load_run(run_a)
    run_b = run_b if isinstance(run_b, Run) else load_run(run_b)
    from ..compare.comparable import require_comparable

    require_comparable([run_a, run_b])
    name_a, name_b = name_a or run_a.name, name_b or run_b.name
    a, b = _scores(run_a), _scores(run_b)
    both = a.join(b, how="inner", lsuffix="_a", rsuffix="_b")
    colls = sorted(set(both.index.get_level_values(0)), key=lambda c: (c != "hallmark", c != "go", c))
    fig, axes = new_axes(ax, max(len(colls), 1))
    n = n_levels([run_a.summary, run_b.summary])
    mappable = None
    labelled = {}
    for axis, coll in zip(axes, colls, strict=False):
        d = both.loc[coll]
        x, y = d["gpc_b"].to_numpy(), d["gpc_a"].to_numpy()
        lv = d["variance_level_a"].to_numpy()
        wins = int((y > x).sum())
        text = f"{name_a} better on {wins}/{len(x)} ({100 * wins / max(len(x), 1):.1f}%)"
        mappable, t = level_panel(axis, x, y, lv, coll, text, n)
        axis.set_xlabel(f"{name_b} GPC")
        axis.set_ylabel(f"{name_a} GPC")
        if label_top:
            diff = np.abs(y - x)
            top = np.argsort(-diff, kind="stable")[:label_top]
            labels = [axis.text(x[k], y[k], short_name(d.index[k]), fontsize=6) for k in top]
            labelled[axis] = (labels, x, y, t)
    for axis, (labels, x, y, note) in labelled.items():
        _repel(axis, labels, x, y, note)
    if mappable is not None:
        level_colorbar(fig, mappable, axes, n)
    return fig
