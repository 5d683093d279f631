"""``leaderboard``: headline numbers, bootstrap intervals, win rates and tests across runs."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._errors import InputError
from .._progress import Progress
from .._version import __version__
from ..io.runfolder import atomic_files, dumps_json
from ..metrics import registry
from ..metrics.registry import RANK_COLUMNS, wsi_metric_columns
from ._depth_row import DEPTH_BASELINE_ROW, baseline_inputs, coverage_columns, depth_flags
from ._display import display_table, fmt_p, fmt_value, markdown_table  # noqa: F401 - public here
from .runs import RunSet, load_runs
from .stats import bh_adjust, bootstrap_weights, nanmean, percentile_ci, weighted_mean, wilcoxon

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

RANK_METRICS = RANK_COLUMNS
#: below this many WSIs no bootstrap interval is shown (resampling 2-4 WSIs says nothing)
MIN_WSI_BOOTSTRAP = 5
#: below this many WSIs a two-sided paired test over WSIs cannot reach p < 0.05 (2 / 2**5 = 0.0625)
MIN_WSI_TEST = 6


def smallest_p(n_wsi: int) -> float:
    """The smallest two-sided p of an exact paired test over ``n_wsi`` WSIs (all differences of one
    sign): 2 / 2**n, 0.002 with 10 WSIs."""
    return 2.0 / 2.0**n_wsi if n_wsi > 0 else float("nan")


COMPARISON_COLUMNS = [
    "model", "reference", "collection", "pathway", "gpc_model", "gpc_reference", "difference",
    "n_wsi", "wilcoxon_stat", "p_value", "p_adjusted",
]  # fmt: skip


@dataclass
class Leaderboard:
    """Result of :func:`leaderboard`.

    Attributes
    ----------
    table
        One row per model (wide, for display and ranking).
    long
        model, collection, metric, value, ci_low, ci_high (the stable long table).
    comparison
        Per pathway, each model against the reference: difference, paired test over WSIs and
        Benjamini-Hochberg adjusted p-values.
    info
        Parameters, notes and the provenance of every run.
    """

    table: pd.DataFrame
    long: pd.DataFrame
    comparison: pd.DataFrame
    info: dict

    def write(self, out: str | Path, overwrite: bool = False, inputs: Iterable = ()) -> Path:
        """Write ``out`` (the wide CSV) and, next to it, ``*_long.csv``, ``pathway_comparison.csv``
        and ``*.json`` (provenance), as one unit (:func:`gpc_bench.io.runfolder.atomic_files`)."""
        out = Path(out)
        files = {name: _csv_writer(df) for name, df in zip(leaderboard_files(out)[:3],
                 (self.table, self.long, self.comparison), strict=True)}  # fmt: skip
        info = dict(self.info, files=leaderboard_files(out), kind="leaderboard")
        files[leaderboard_files(out)[3]] = lambda p: p.write_text(dumps_json(info))
        atomic_files(out.parent, files, kind="leaderboard", overwrite=overwrite, inputs=inputs)
        return out

    def display(self, digits: int = 3, intervals: bool = True) -> pd.DataFrame:
        """The headline columns as strings, rows by rank with controls last: values with their
        bootstrap interval (``0.412 [0.391, 0.433]``), p-values in scientific notation, blanks
        where a value does not apply (the reference against itself)."""
        return display_table(self, digits, intervals)

    def to_markdown(self, digits: int = 3) -> str:
        """The headline table as Markdown (see :meth:`display`)."""
        return markdown_table(self.display(digits))


def leaderboard_files(out: str | Path) -> list[str]:
    """The names a leaderboard written to ``out`` takes: wide CSV, long CSV, comparison, JSON."""
    out = Path(out)
    stem = out.name[: -len(".csv")] if out.name.endswith(".csv") else out.name
    return [out.name, f"{stem}_long.csv", "pathway_comparison.csv", f"{stem}.json"]


def _csv_writer(df):
    return lambda p: df.to_csv(p, index=False, lineterminator="\n")


def _metrics(
    rs: RunSet, model: str, weights: np.ndarray
) -> tuple[dict[tuple[str, str], np.ndarray], np.ndarray]:
    """Every bootstrappable metric of one model under each weight row: (collection, metric) -> draws."""
    return _metrics_of(
        rs, rs.scores[model], rs.levels[model], rs.hvg[model], rs.wsi_values.get(model, {}),
        rs.variants.get(model, {}), weights,
    )  # fmt: skip


def _metrics_of(rs: RunSet, scores, lv, hvg, wsi_values: dict, variants: dict, weights: np.ndarray):
    """:func:`_metrics` of given per-WSI pathway scores, levels, HVG PCC and declared metrics."""
    out: dict[tuple[str, str], np.ndarray] = {}
    s = weighted_mean(scores, weights)  # (n_pathways, n_draws)
    coll = rs.pathways["collection"].to_numpy()
    for c in rs.collections:
        out[(c, "gpc")] = nanmean(s[coll == c], axis=0)
    for level in range(1, rs.n_levels + 1):
        out[("all", f"gpc_level_{level}")] = nanmean(s[lv == level], axis=0)
    per_wsi = {"hvg_pcc": hvg, **wsi_values}
    for name, (v_scores, v_hvg) in variants.items():  # declared gene metrics: GPC and HVG PCC;
        if not np.isfinite(v_scores).any():  # declared pathway metrics (no HVG): their own name
            continue
        vs = weighted_mean(v_scores, weights)
        key = name if v_hvg is None else f"gpc_{name}"
        for c in rs.collections:
            out[(c, key)] = nanmean(vs[coll == c], axis=0)
        if v_hvg is not None:
            per_wsi[f"hvg_pcc_{name}"] = v_hvg
    for name, h in per_wsi.items():  # mean over WSIs (micro) and over cancer types' means (macro)
        out[("all", f"{name}_micro")], out[("all", f"{name}_macro")] = _macro_micro(
            h, rs.cancer_types, weights
        )
    return out, s


def _macro_micro(
    h: np.ndarray, cancer_types: list[str], weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Micro and macro averages of per-WSI values under each weight row."""
    types = np.asarray(cancer_types, dtype=object)
    per_type = [
        weighted_mean(np.where(types == t, h, np.nan)[None, :], weights)[0] for t in sorted(set(types))
    ]
    return weighted_mean(h[None, :], weights)[0], nanmean(np.vstack(per_type), axis=0)


def _win_rates(rs: RunSet, s_model: np.ndarray, s_ref: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
    out = {}
    coll = rs.pathways["collection"].to_numpy()
    for c in rs.collections:
        a, b = s_model[coll == c], s_ref[coll == c]
        both = np.isfinite(a) & np.isfinite(b)
        n = both.sum(axis=0).astype(np.float64)
        wins = ((a > b) & both).sum(axis=0)
        ties = ((a == b) & both).sum(axis=0)
        for name, k in (("win_rate", wins), ("tie_rate", ties)):
            r = np.full(n.shape, np.nan)
            np.divide(k, n, out=r, where=n > 0)
            out[(c, name)] = r
        out[(c, "n_compared")] = n
    return out


def leaderboard(
    runs: Sequence,
    reference: str | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    intersect: bool = False,
    controls: Iterable[str] = (),
    rank_by: str = "mean-rank",
    ci: float = 0.95,
    protocol: str | None = None,
) -> Leaderboard:
    """Compare run folders written by ``gpc-bench score``.

    Parameters
    ----------
    runs
        Run folders (paths or :class:`~gpc_bench.io.run.Run`), or a :class:`RunSet`.
    reference
        Model the win rates and tests compare against (default: the first run that is not a
        control).
    n_boot
        Bootstrap draws over WSIs (stratified by cancer type); 0 disables intervals.
    seed
        Seed of the bootstrap.
    intersect
        Restrict to the WSIs and pathways all runs share instead of refusing.
    controls
        Model names to mark as controls (they are shown but not ranked).
    protocol
        When given, refuse runs not scored under this protocol (``published``: the paper's).
    rank_by
        ``"mean-rank"`` (the mean of the ranks on hvg_pcc_macro, hvg_pcc_micro, gpc_hallmark and
        gpc_go; the default) or one metric column, higher is better.
    ci
        Level of the percentile intervals.

    Returns
    -------
    Leaderboard
    """

    rs = runs if isinstance(runs, RunSet) else load_runs(runs, intersect=intersect, controls=controls)
    if protocol is not None:
        off = {m: (r.summary.get("config") or {}).get("protocol", "default") for m, r in rs.runs.items()}
        off = {m: p for m, p in off.items() if p != protocol}
        if off:
            raise InputError(
                f"--protocol {protocol}: these runs were scored under another protocol: {off}",
                f"re-score them with gpc-bench score --protocol {protocol}",
            )
    ranked_models = [m for m in rs.models if m not in rs.controls]
    if reference is None:
        reference = ranked_models[0] if ranked_models else rs.models[0]
    if reference not in rs.models:
        raise InputError(f"--reference {reference!r} is not among the runs", f"models: {rs.models}")
    n_boot = _notes(rs, n_boot)
    ones = np.ones((1, len(rs.wsis)))
    weights = np.vstack([ones, bootstrap_weights(rs.cancer_types, n_boot, seed)]) if n_boot else ones

    per_model, s_all = {}, {}
    for m in rs.models:
        per_model[m], s_all[m] = _metrics(rs, m, weights)
    models, controls = list(rs.models), set(rs.controls)
    base = baseline_inputs(rs)
    if base is not None:  # what a prediction of depth alone scores: a control row from the truth
        scores, lv, hvg = base
        per_model[DEPTH_BASELINE_ROW], s_all[DEPTH_BASELINE_ROW] = _metrics_of(
            rs, scores, lv, hvg, {}, {}, weights
        )
        models.append(DEPTH_BASELINE_ROW)
        controls.add(DEPTH_BASELINE_ROW)
    for m in models:
        per_model[m].update(_win_rates(rs, s_all[m], s_all[reference]))

    scores = dict(rs.scores) | ({DEPTH_BASELINE_ROW: base[0]} if base is not None else {})
    table, long = _tables(rs, models, controls, scores, per_model, reference, n_boot, ci, rank_by)
    comparison = _pathway_comparison(rs, s_all, reference)
    info = _info(rs, reference, n_boot, seed, ci, rank_by, intersect)
    return Leaderboard(table, long, comparison, info)


def _notes(rs: RunSet, n_boot: int) -> int:
    """Add what the cohort's size allows to the run set's notes; the bootstrap draws to make."""
    single = sorted(t for t in set(rs.cancer_types) if rs.cancer_types.count(t) < 2)
    if single and n_boot and len(set(rs.cancer_types)) > 1:
        note = f"cancer type(s) {single} have a single WSI: the bootstrap cannot vary them"
        if note not in rs.notes:
            rs.notes.append(note)
    n_wsi = len(rs.wsis)
    notes = []
    if n_boot and n_wsi < MIN_WSI_BOOTSTRAP:
        notes.append(
            f"only {n_wsi} WSIs: no bootstrap intervals (at least {MIN_WSI_BOOTSTRAP} are needed for them "
            "to mean anything)"
        )
        n_boot = 0
    note = (
        f"the tests pair models over the {n_wsi} WSIs: the smallest p they can give is "
        f"{smallest_p(n_wsi):.3g} (2 / 2^{n_wsi})"
    )
    if n_wsi < MIN_WSI_TEST:
        note += f"; no difference can be significant at 0.05 below {MIN_WSI_TEST} WSIs"
    notes.append(note)
    rs.notes.extend(n for n in notes if n not in rs.notes)  # a RunSet may be ranked more than once
    return n_boot


def _tables(
    rs: RunSet, models, controls, scores: dict, per_model: dict, reference: str, n_boot: int, ci: float,
    rank_by: str,
):  # fmt: skip
    """The wide table (one row per model, by rank, controls last) and the long table; ``scores``:
    each row's per-WSI pathway scores (the runs', and the depth baseline's)."""
    import pandas as pd

    long_rows, wide_rows = [], []
    coll = rs.pathways["collection"].to_numpy()
    fractions, low = coverage_columns(rs, models)
    for i, m in enumerate(models):
        summ = rs.runs[m].summary.get("headline", {}) if m in rs.runs else {}
        row = {
            "model": m, "control": m in controls, "n_wsi": len(rs.wsis),
            "pathways_scored": fractions[i], "low_coverage": low[i],
        }  # fmt: skip
        for (c, metric), draws in per_model[m].items():
            lo, hi = percentile_ci(draws[1:], ci) if n_boot else (float("nan"), float("nan"))
            if metric == "n_compared":
                continue
            long_rows.append((m, c, metric, float(draws[0]), lo, hi))
        own = scores[m]
        for c in rs.collections:  # the WSI is the unit: per-WSI GPC of the collection, paired over WSIs
            a, b = nanmean(own[coll == c], axis=0), nanmean(rs.scores[reference][coll == c], axis=0)
            long_rows.append((m, c, "wilcoxon_p", wilcoxon(a, b)[1], float("nan"), float("nan")))
        for key in ("ami", "ari"):
            if summ.get(key) is not None:
                long_rows.append((m, "all", key, float(summ[key]), float("nan"), float("nan")))
        wide_rows.append(row)
    long = pd.DataFrame(long_rows, columns=["model", "collection", "metric", "value", "ci_low", "ci_high"])

    table = pd.DataFrame(wide_rows)

    point = {(m, c, metric): v for m, c, metric, v, *_ in long_rows}

    def value(m, c, metric):
        return point.get((m, c, metric), float("nan"))

    for col, (c, metric) in {
        "hvg_pcc_macro": ("all", "hvg_pcc_macro"),
        "hvg_pcc_micro": ("all", "hvg_pcc_micro"),
    }.items():
        table[col] = [value(m, c, metric) for m in models]
    for c in dict.fromkeys(["hallmark", "go", *rs.collections]):
        table[f"gpc_{c}"] = [value(m, c, "gpc") for m in models]
    for gm in registry.GENE_METRICS:  # the declared gene metrics the runs have, beside raw GPC
        for c in dict.fromkeys(["hallmark", "go", *rs.collections]):
            if any(k[1:] == (c, f"gpc_{gm.name}") for k in point):
                table[f"gpc_{gm.name}_{c}"] = [value(m, c, f"gpc_{gm.name}") for m in models]
        for avg in ("macro", "micro"):
            key = f"hvg_pcc_{gm.name}_{avg}"
            if any(k[2] == key for k in point):
                table[key] = [value(m, "all", key) for m in models]
    for pm in registry.PATHWAY_METRICS:  # the declared pathway metrics the runs have
        for c in dict.fromkeys(["hallmark", "go", *rs.collections]):
            if any(k[1:] == (c, pm.name) for k in point):
                table[f"{pm.name}_{c}"] = [value(m, c, pm.name) for m in models]
    for metric in registry.WSI_METRICS:  # the declared per-WSI metrics the runs have
        for col in wsi_metric_columns(metric):
            if any(k[2] == col.key for k in point):
                table[col.column] = [value(m, "all", col.key) for m in models]
    for level in range(1, rs.n_levels + 1):
        table[f"gpc_level_{level}"] = [value(m, "all", f"gpc_level_{level}") for m in models]
    for key in ("ami", "ari"):
        if any(k[2] == key for k in point):
            table[key] = [value(m, "all", key) for m in models]
    for c in dict.fromkeys(["hallmark", "go", *rs.collections]):
        table[f"win_rate_{c}"] = [value(m, c, "win_rate") for m in models]
        table[f"tie_rate_{c}"] = [value(m, c, "tie_rate") for m in models]
        table[f"wilcoxon_p_{c}"] = [value(m, c, "wilcoxon_p") for m in models]
    table["depth_flag"] = depth_flags(table, list(rs.collections))
    self_cols = [c for c in table if c.startswith(("win_rate_", "tie_rate_", "wilcoxon_p_"))]
    table.loc[table["model"] == reference, self_cols] = np.nan  # the reference against itself
    long = long[~((long["model"] == reference) & long["metric"].isin(["win_rate", "tie_rate", "wilcoxon_p"]))]
    table["rank"] = _rank(table, rank_by)
    # rows by rank, controls last (unranked models after ranked ones), the long table in that order
    order = table.assign(
        _c=table["control"].astype(bool),
        _b=table["model"] == DEPTH_BASELINE_ROW,
        _r=table["rank"].astype("float64"),
    )  # ranked models, then the controls given, then the depth baseline
    order = order.sort_values(["_c", "_b", "_r", "model"], na_position="last", kind="stable")
    table = table.loc[order.index].reset_index(drop=True)
    position = {m: i for i, m in enumerate(table["model"])}
    long = long.sort_values("model", key=lambda s: s.map(position), kind="stable").reset_index(drop=True)

    return table, long


def _info(
    rs: RunSet, reference: str, n_boot: int, seed: int, ci: float, rank_by: str, intersect: bool
) -> dict:
    """Parameters, notes and the provenance of every run."""
    n_wsi = len(rs.wsis)
    info = {
        "gpc_bench_version": __version__,
        "reference": reference,
        "n_boot": n_boot,
        "seed": seed,
        "ci": ci,
        "bootstrap": "WSIs resampled with replacement within each cancer type; percentile intervals",
        "tests": "Wilcoxon signed-rank, paired over WSIs (exact below 50 WSIs): a collection's per-WSI GPC "
        "in the headline, each pathway's per-WSI score in pathway_comparison",
        "smallest_p": smallest_p(n_wsi),
        "rank_by": rank_by,
        "intersect": intersect,
        "n_levels": rs.n_levels,
        "collections": list(rs.collections),
        "protocol": rs.runs[rs.models[0]].summary.get("protocol"),
        "warnings": {
            m: rs.runs[m].summary.get("warnings", []) for m in rs.models if rs.runs[m].summary.get("warnings")
        },
        "notes": rs.notes,
        "collection_id": rs.collection_id,
        "wsis": rs.wsis,
        "controls": sorted(rs.controls),
        "runs": {
            m: {
                "path": str(rs.runs[m].path),
                "inputs": rs.runs[m].summary.get("inputs"),
                "collection_id": rs.runs[m].summary.get("pathways", {}).get("collection_id"),
                "gpc_bench_version": rs.runs[m].summary.get("gpc_bench_version"),
            }
            for m in rs.models
        },
    }
    return info


def _rank(table, rank_by: str):
    import pandas as pd

    ranked = ~table["control"].to_numpy(dtype=bool)
    if rank_by == "mean-rank":
        cols = [c for c in RANK_METRICS if c in table and table.loc[ranked, c].notna().any()]
        if not cols:
            return pd.array([pd.NA] * len(table), dtype="Int64")
        ranks = table.loc[ranked, cols].rank(ascending=False, method="min")
        score = ranks.mean(axis=1)
        key = score  # lower mean rank is better
        order = key.rank(method="min")
    else:
        if rank_by not in table:
            raise InputError(
                f"--rank-by {rank_by!r} is not a leaderboard column", f"columns: {list(table.columns)}"
            )
        order = table.loc[ranked, rank_by].rank(ascending=False, method="min")
    out = pd.array([pd.NA] * len(table), dtype="Int64")
    out[np.flatnonzero(ranked)] = order.to_numpy().astype(np.int64)
    return out


def _pathway_comparison(rs: RunSet, s_all, reference: str):
    import pandas as pd

    frames = []
    progress = Progress(len(rs.models) - 1, "models compared per pathway", logger)
    for m in rs.models:
        if m == reference:
            continue
        rows = []
        for k, (c, name) in enumerate(zip(rs.pathways["collection"], rs.pathways["pathway"], strict=True)):
            stat, p, n = wilcoxon(rs.scores[m][k], rs.scores[reference][k])
            a, b = s_all[m][k, 0], s_all[reference][k, 0]
            rows.append((m, reference, c, name, a, b, a - b, n, stat, p))
        df = pd.DataFrame(rows, columns=COMPARISON_COLUMNS[:-1])
        df["p_adjusted"] = np.nan
        for c in rs.collections:
            sel = (df["collection"] == c).to_numpy()
            df.loc[sel, "p_adjusted"] = bh_adjust(df.loc[sel, "p_value"].to_numpy())
        frames.append(df)
        progress.step("compared %s with %s on %d pathways", m, reference, len(df))
    progress.close()
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COMPARISON_COLUMNS)
