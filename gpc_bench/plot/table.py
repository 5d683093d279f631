"""The leaderboard as a figure, in the style of scib-metrics' results table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..metrics.registry import HEADLINE
from ._base import new_axes

COLUMNS = {m.column: m.label for m in HEADLINE}

#: one colour scale per metric family: correlations share one (from min(0, lowest) to the highest
#: value shown), agreement scores and win rates have their fixed range [0, 1]
_FAMILY_CMAP = {"pcc": "PRGn", "clustering": "Blues", "rate": "RdBu"}


def _family_range(values: np.ndarray, family: str) -> tuple[float, float]:
    if family in ("clustering", "rate"):
        return 0.0, 1.0
    ok = values[np.isfinite(values)]
    if not ok.size:
        return 0.0, 1.0
    lo, hi = min(0.0, float(ok.min())), float(ok.max())
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


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


def leaderboard_table(table, *, ax=None, columns=None, long=None, reference=None):
    """Draw a leaderboard (``leaderboard.csv`` path, a DataFrame, or a ``Leaderboard``).

    Rows are models by rank (controls last, in italics; the reference in bold). Each metric family
    has one colour scale (docs/comparing.md): correlations share one, AMI/ARI and win rates use
    [0, 1]; a circle's size and colour follow the value, and the value is written beside it with
    its bootstrap interval when the long table is available.

    Returns
    -------
    matplotlib.figure.Figure
        Each metric column's circles carry the gid ``column-<column>``, the reference's label
        ``reference``.
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
    n_rows, n_cols = len(order), len(cols) + 2
    fig, (axis,) = new_axes(ax, 1, width=1.25 * n_cols + 1.2, height=0.5 * n_rows + 1.3)
    axis.set_xlim(0, n_cols)
    axis.set_ylim(n_rows, -1.2)
    axis.axis("off")
    axis.text(0.05, -0.6, "model", ha="left", va="center", fontweight="bold", fontsize=9)
    axis.text(n_cols - 0.5, -0.6, "rank", ha="center", va="center", fontweight="bold", fontsize=9)
    for j, c in enumerate(cols, start=1):
        axis.text(j + 0.5, -0.6, COLUMNS.get(c, c), ha="center", va="center", fontweight="bold", fontsize=8)
    for i, row in order.iterrows():
        style = "italic" if row["_ctl"] else "normal"
        is_ref = row["model"] == reference
        label = f"{row['model']} (ref)" if is_ref else str(row["model"])
        t = axis.text(0.05, i + 0.5, label, ha="left", va="center", fontsize=9, style=style,
                      fontweight="bold" if is_ref else "normal")  # fmt: skip
        if is_ref:
            t.set_gid("reference")
        rank = "control" if row["_ctl"] else ("" if row["_rank"] != row["_rank"] else str(int(row["_rank"])))
        axis.text(n_cols - 0.5, i + 0.5, rank, ha="center", va="center", fontsize=9, style=style)
        if i:
            axis.axhline(i, color="0.9", lw=0.5)
    by = {m.column: m for m in HEADLINE}
    families = {}
    for c in cols:
        fam = by[c].family if c in by else "pcc"
        families.setdefault(fam, []).append(c)
    for fam, fam_cols in families.items():
        lo, hi = _family_range(order[fam_cols].to_numpy(dtype=float).ravel(), fam)
        cmap = mpl.colormaps[_FAMILY_CMAP.get(fam, "PRGn")]
        for c in fam_cols:
            j = cols.index(c) + 1
            vals = order[c].to_numpy(dtype=float)
            ok = np.isfinite(vals)
            frac = np.clip((vals - lo) / (hi - lo), 0, 1)
            rows = np.flatnonzero(ok)
            dots = axis.scatter(
                np.full(rows.size, j + 0.2), rows + 0.5, s=30 + 230 * frac[ok],
                c=cmap(0.15 + 0.75 * frac[ok]), edgecolors="none",
            )  # fmt: skip
            dots.set_gid(f"column-{c}")
            m = by.get(c)
            for i in rows:
                text = f"{vals[i]:.3f}"
                if m is not None and (order.loc[i, "model"], m.collection, m.key) in ci:
                    a, b = ci[(order.loc[i, "model"], m.collection, m.key)]
                    if a == a and b == b:
                        text += f"\n[{a:.2f}, {b:.2f}]"
                axis.text(j + 0.42, i + 0.5, text, ha="left", va="center", fontsize=6.5, linespacing=1.1)
    axis.text(0.05, n_rows + 0.05, "colour scales: correlations share one; AMI/ARI and win rates 0 to 1",
              ha="left", va="top", fontsize=6.5, color="0.4")  # fmt: skip
    axis.set_aspect("auto")
    return fig
