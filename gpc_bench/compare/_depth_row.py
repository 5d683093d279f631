"""The depth baseline in a leaderboard: a control row computed from the truth, and the flags of
models that do not beat it; the coverage of each run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .runs import RunSet

if TYPE_CHECKING:
    import pandas as pd

#: the control row's model name
DEPTH_BASELINE_ROW = "depth baseline (truth)"
#: the headline columns a model must beat the depth baseline on
FLAGGED = ("hvg_pcc_macro", "hvg_pcc_micro")


def baseline_inputs(rs: RunSet) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Pathway scores, variance levels and HVG PCC of the depth baseline on the run set's WSIs and
    pathways (from the first run that has them; every run has the same truth), or ``None``."""
    for m in rs.models:
        scores, hvg = rs.variants.get(m, {}).get("depth_baseline", (None, None))
        if scores is not None and np.isfinite(scores).any():
            return scores, rs.levels[m], hvg
    return None


def depth_flags(table: pd.DataFrame, collections: list[str]) -> list[str]:
    """Per row of the wide table: the headline columns where a ranked model does not score above
    the depth baseline row ("" when it beats it everywhere, or for controls)."""
    base = table[table["model"] == DEPTH_BASELINE_ROW]
    if base.empty:
        return [""] * len(table)
    cols = [c for c in (*FLAGGED, *(f"gpc_{c}" for c in collections)) if c in table]
    ref = base.iloc[0]
    out = []
    for _, row in table.iterrows():
        if row["control"]:
            out.append("")
            continue
        below = [c for c in cols if np.isfinite(row[c]) and np.isfinite(ref[c]) and not row[c] > ref[c]]
        out.append("not above the depth baseline on " + ", ".join(below) if below else "")
    return out


def coverage_columns(rs: RunSet, models: list[str]) -> tuple[list, list]:
    """Per model: the smallest fraction of a collection's pathways scored, and whether the run
    carries a coverage warning (fewer than 80% of a collection's pathways scored, or under half
    of the truth's genes predicted)."""
    from ..summary import coverage_warnings

    fractions, low = [], []
    for m in models:
        run = rs.runs.get(m)
        summary = run.summary if run is not None else {}
        cov = (summary.get("headline") or {}).get("coverage")
        if not cov:
            fractions.append(np.nan)
            low.append(False)
            continue
        vals = [v["fraction"] for v in cov.values() if v.get("fraction") is not None]
        fractions.append(min(vals) if vals else np.nan)
        low.append(bool(coverage_warnings(cov, summary.get("counts") or {})))
    return fractions, low
