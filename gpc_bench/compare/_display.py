"""How a leaderboard is shown: numbers and p-values as text, the display table, Markdown."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from .leaderboard import Leaderboard


def fmt_value(v: object, digits: int = 3) -> str:
    """A number for display: blank when missing (NaN, None or pandas' NA)."""
    import pandas as pd

    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return ""
    if isinstance(v, float | np.floating):
        return f"{v:.{digits}f}"
    return str(v)


def fmt_p(p: float | None) -> str:
    """A p-value: scientific notation below 0.001 (1.2e-73, not 0.000), blank when missing."""
    if p is None or p != p:
        return ""
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


def display_table(lb: Leaderboard, digits: int = 3, intervals: bool = True) -> pd.DataFrame:
    """See :meth:`Leaderboard.display`."""
    import pandas as pd

    from ..metrics.registry import HEADLINE

    t = lb.table
    ci = lb.long.set_index(["model", "collection", "metric"])[["ci_low", "ci_high"]]
    rows = []
    for _, r in t.iterrows():
        out = {"model": r["model"], "rank": "control" if r["control"] else fmt_value(r["rank"])}
        for m in HEADLINE:
            if m.column not in t or not t[m.column].notna().any():
                continue
            text = fmt_value(r[m.column], digits)
            key = (r["model"], m.collection, m.key)
            if intervals and text and key in ci.index:
                lo, hi = ci.loc[key]
                if lo == lo and hi == hi:
                    text += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
            out[m.one_line] = text
        for c in lb.info.get("collections", []):
            col = f"wilcoxon_p_{c}"
            if col in t and t[col].notna().any():
                out[f"Wilcoxon p {c}"] = fmt_p(r[col])
        flags = [f for f in (r.get("depth_flag") or "", "low coverage" if r.get("low_coverage") else "") if f]
        out["flag"] = "; ".join(flags)
        rows.append(out)
    return pd.DataFrame(rows)


def markdown_table(df: pd.DataFrame) -> str:
    """A frame of strings as a Markdown table."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"
