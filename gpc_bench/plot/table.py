"""The leaderboard as a figure, in the style of scib-metrics' results table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..metrics.registry import HEADLINE
from ._base import new_axes

COLUMNS = {m.column: m.label for m in HEADLINE}


def leaderboard_table(table, *, ax=None, columns=None):
    """Draw a leaderboard (``leaderboard.csv`` path or DataFrame) as a table of circles.

    Rows are models by rank (controls last, in italics); each metric column scales its circles'
    colour from the column's minimum to its maximum, with the value written beside.

    Returns
    -------
    matplotlib.figure.Figure
        Each metric column's circles carry the gid ``column-<column>``.
    """
    import matplotlib as mpl
    import pandas as pd

    if isinstance(table, str | Path):
        table = pd.read_csv(table)
    cols = [c for c in (columns or COLUMNS) if c in table and table[c].notna().any()]
    order = table.assign(_ctl=table["control"].astype(bool), _rank=table["rank"].astype(float))
    order = order.sort_values(["_ctl", "_rank", "model"], na_position="last").reset_index(drop=True)
    n_rows, n_cols = len(order), len(cols) + 2
    fig, (axis,) = new_axes(ax, 1, width=1.1 * n_cols + 1.2, height=0.45 * n_rows + 1.2)
    cmap = mpl.colormaps["PRGn"]
    axis.set_xlim(0, n_cols)
    axis.set_ylim(n_rows, -1.2)
    axis.axis("off")
    axis.text(0.05, -0.6, "model", ha="left", va="center", fontweight="bold", fontsize=9)
    axis.text(n_cols - 0.5, -0.6, "rank", ha="center", va="center", fontweight="bold", fontsize=9)
    for j, c in enumerate(cols, start=1):
        axis.text(j + 0.5, -0.6, COLUMNS.get(c, c), ha="center", va="center", fontweight="bold", fontsize=8)
    for i, row in order.iterrows():
        style = "italic" if row["_ctl"] else "normal"
        axis.text(0.05, i + 0.5, str(row["model"]), ha="left", va="center", fontsize=9, style=style)
        rank = "control" if row["_ctl"] else ("" if pd.isna(row["rank"]) else str(int(row["rank"])))
        axis.text(n_cols - 0.5, i + 0.5, rank, ha="center", va="center", fontsize=9, style=style)
        if i:
            axis.axhline(i, color="0.9", lw=0.5)
    for j, c in enumerate(cols, start=1):
        vals = order[c].to_numpy(dtype=float)
        ok = np.isfinite(vals)
        lo, hi = (vals[ok].min(), vals[ok].max()) if ok.any() else (0.0, 1.0)
        frac = np.full(vals.shape, 0.5) if hi == lo else (vals - lo) / (hi - lo)
        rows = np.flatnonzero(ok)
        dots = axis.scatter(
            np.full(rows.size, j + 0.22),
            rows + 0.5,
            s=40 + 260 * frac[ok],
            c=cmap(0.15 + 0.8 * frac[ok]),
            edgecolors="none",
        )
        dots.set_gid(f"column-{c}")
        for i in rows:
            axis.text(j + 0.45, i + 0.5, f"{vals[i]:.3f}", ha="left", va="center", fontsize=8)
    axis.set_aspect("auto")
    return fig
