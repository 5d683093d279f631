"""The leaderboard as a figure, in the style of scib-metrics' results table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..metrics.registry import HEADLINE
from ._base import new_axes

if TYPE_CHECKING:
    import matplotlib.axes
    import matplotlib.figure
    import pandas as pd

    from ..compare.leaderboard import Leaderboard

COLUMNS = {m.column: m.label for m in HEADLINE}

#: one sequential scale per metric, over the ranked models only (controls are drawn apart, as
#: hollow grey circles, so that a control cannot top the scale and wash the best model out)
CMAP = "viridis_r"
#: the lightest end of the scale used: a low value stays visible, never white
_LOW, _HIGH = 0.08, 0.92
VALUE_FONTSIZE = 8.0


def _range(values: np.ndarray) -> tuple[float, float]:
    ok = values[np.isfinite(values)]
    if not ok.size:
        return 0.0, 1.0
    lo, hi = float(ok.min()), float(ok.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def format_interval(a: float, b: float, digits: int = 3) -> str:
    """``[a, b]`` with enough decimals that the two ends differ (up to 6), as a reader expects of a
    95% interval that is narrow but not a point."""
    for d in range(digits, 7):
        lo, hi = f"{a:.{d}f}", f"{b:.{d}f}"
        if lo != hi:
            return f"[{lo}, {hi}]"
    return f"[{a:.{digits}f}, {b:.{digits}f}]"


def _read(table):
    """A leaderboard CSV path (with its ``*_long.csv`` and ``.json`` next to it) or a DataFrame."""
    import pandas as pd

    if not isinstance(table, str | Path):
        return table, None, None
    path = Path(table)
    stem = path.name[: -len(".csv")] if path.name.endswith(".csv") else path.name
    long_p, info_p = path.with_name(f"{stem}_long.csv"), path.with_name(f"{stem}.json")
    long = pd.read_csv(long_p) if long_p.is_file() else None
    ref = json.loads(info_p.read_text()).get("reference") if info_p.is_file() else None
    return pd.read_csv(path), long, ref


def leaderboard_table(
    table: str | Path | pd.DataFrame | Leaderboard,
    *,
    ax: matplotlib.axes.Axes | None = None,
    columns: Sequence[str] | None = None,
    long: pd.DataFrame | None = None,
    reference: str | None = None,
) -> matplotlib.figure.Figure:
    """Draw a leaderboard (``leaderboard.csv`` path, a DataFrame, or a ``Leaderboard``).

    Rows are models by rank (controls last, in italics; the reference in bold). Each metric column
    has its own sequential colour scale over the ranked models (darker is better); controls are
    hollow grey circles outside the scale. A circle's size and colour follow the value, written
    beside it with its bootstrap interval when the long table is available.

    Returns
    -------
    matplotlib.figure.Figure
        Each metric column's model circles carry the gid ``column-<column>``, its control circles
        ``control-<column>``, the reference's label ``reference``.
    """
    import matplotlib as mpl

    if hasattr(table, "table") and hasattr(table, "long"):  # a Leaderboard
        long, reference = table.long, reference or table.info.get("reference")
        table = table.table
    else:
        table, long_read, ref_read = _read(table)
        long, reference = long if long is not None else long_read, reference or ref_read
    cols = [c for c in (columns or COLUMNS) if c in table and table[c].notna().any()]
    order = table.assign(_ctl=table["control"].astype(bool), _rank=table["rank"].astype(float))
    order = order.sort_values(["_ctl", "_rank", "model"], na_position="last").reset_index(drop=True)
    ci = {}
    if long is not None:
        for r in long.itertuples(index=False):
            ci[(r.model, r.collection, r.metric)] = (r.ci_low, r.ci_high)
    labels = [f"{m} (ref)" if m == reference else str(m) for m in order["model"]]
    name_w = max(1.6, 0.085 * max(len(x) for x in labels) + 0.3)  # the model column fits its labels
    col_w = 1.45
    x0 = name_w  # left edge of the first metric column
    width = x0 + col_w * len(cols) + 0.8
    n_rows = len(order)
    fig, (axis,) = new_axes(ax, 1, width=width + 0.6, height=0.55 * n_rows + 1.4)
    axis.set_xlim(0, width)
    axis.set_ylim(n_rows, -1.2)
    axis.axis("off")
    axis.text(0.05, -0.6, "model", ha="left", va="center", fontweight="bold", fontsize=9)
    axis.text(width - 0.4, -0.6, "rank", ha="center", va="center", fontweight="bold", fontsize=9)
    for j, c in enumerate(cols):
        axis.text(x0 + col_w * (j + 0.5), -0.6, COLUMNS.get(c, c), ha="center", va="center",
                  fontweight="bold", fontsize=8)  # fmt: skip
    for i, row in order.iterrows():
        style = "italic" if row["_ctl"] else "normal"
        is_ref = row["model"] == reference
        weight, colour = ("bold" if is_ref else "normal"), ("0.45" if row["_ctl"] else "black")
        t = axis.text(0.05, i + 0.5, labels[i], ha="left", va="center", fontsize=9, style=style,
                      fontweight=weight, color=colour)  # fmt: skip
        if is_ref:
            t.set_gid("reference")
        rank = "control" if row["_ctl"] else ("" if row["_rank"] != row["_rank"] else str(int(row["_rank"])))
        axis.text(width - 0.4, i + 0.5, rank, ha="center", va="center", fontsize=9, style=style)
        if i:
            axis.axhline(i, color="0.9", lw=0.5)
    cmap = mpl.colormaps[CMAP]
    by = {m.column: m for m in HEADLINE}
    ctl = order["_ctl"].to_numpy(dtype=bool)
    for j, c in enumerate(cols):
        vals = order[c].to_numpy(dtype=float)
        higher = by[c].higher_is_better if c in by else True
        lo, hi = _range(vals[~ctl])
        frac = np.clip((vals - lo) / (hi - lo), 0, 1)
        frac = frac if higher else 1 - frac
        xc = x0 + col_w * j + 0.3
        for gid, sel in (("column", ~ctl), ("control", ctl)):
            rows = np.flatnonzero(np.isfinite(vals) & sel)
            if not rows.size:
                continue
            if gid == "column":
                colours = cmap(_LOW + (_HIGH - _LOW) * frac[rows])
                dots = axis.scatter(np.full(rows.size, xc), rows + 0.5, s=40 + 200 * frac[rows],
                                    c=colours, edgecolors="none")  # fmt: skip
            else:
                dots = axis.scatter(np.full(rows.size, xc), rows + 0.5, s=60, facecolors="none",
                                    edgecolors="0.55", linewidths=1.0, linestyle="--")  # fmt: skip
            dots.set_gid(f"{gid}-{c}")
        m = by.get(c)
        for i in np.flatnonzero(np.isfinite(vals)):
            text = f"{vals[i]:.3f}"
            if m is not None and (order.loc[i, "model"], m.collection, m.key) in ci:
                a, b = ci[(order.loc[i, "model"], m.collection, m.key)]
                if a == a and b == b:
                    text += "\n" + format_interval(a, b)
            axis.text(xc + 0.22, i + 0.5, text, ha="left", va="center", fontsize=VALUE_FONTSIZE,
                      linespacing=1.1, color="0.45" if ctl[i] else "black")  # fmt: skip
    legend = "each column its own scale over the models (darker is better); controls: hollow grey"
    axis.text(0.05, n_rows + 0.05, legend, ha="left", va="top", fontsize=7, color="0.4")
    axis.set_aspect("auto")
    return fig
