"""``gpc-bench report``: one self-contained HTML file (no external resources) comparing runs."""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._version import __version__
from .io.runfolder import atomic_file
from .metrics.registry import HEADLINE

if TYPE_CHECKING:
    from .compare.leaderboard import Leaderboard
    from .result import Result

logger = logging.getLogger(__name__)

MAX_SCATTERS = 6

METRICS = [
    (
        "HVG PCC (macro / micro)",
        "For each cancer type, the N most variable measured genes (default 50, or a HEST-style list). A WSI's "
        "score is the mean Pearson r over those genes across its spots. Macro averages per cancer type first, "
        "then over types; micro averages over WSIs.",
    ),
    (
        "GPC (Gene Pathway Coherence)",
        "For WSI i and gene g, r_ig is the Pearson r over the WSI's spots of measured vs predicted expression. "
        "A pathway's score is the mean over WSIs of the mean r_ig over its scored genes; GPC Hallmark / GO is "
        "the mean over the collection's scored pathways.",
    ),
    (
        "GPC by variance level",
        "Genes are cut into levels (10 by default, --levels) by their measured variance over all spots (deciles by default); a "
        "pathway's level is that of the mean variance of its genes. High-variance genes are easier to predict, "
        "so compare models level by level.",
    ),
    (
        "Win rate",
        "The share of pathways scored by both where the model's GPC beats the reference's; ties are counted "
        "apart. Intervals come from the same WSI bootstrap.",
    ),
    (
        "95% intervals",
        "Percentile intervals over bootstrap draws that resample WSIs with replacement within each cancer "
        "type (seeded). The Wilcoxon p compares a model with the reference over pathways.",
    ),
    (
        "AMI / ARI",
        "Agreement between k-means clusters of per-WSI mean predictions and the cancer types (when the runs "
        "were scored with --cluster).",
    ),
    (
        "Controls",
        "Shuffled spots and the cancer-type mean profile are negative controls (expect GPC near 0); measured "
        "expression plus noise at a known SNR calibrates the scale. Controls are shown but not ranked.",
    ),
]

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:1em 0}
th,td{border:1px solid #ddd;padding:.3em .5em;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}tr.control td{color:#777;font-style:italic}
.ci{color:#888;font-size:.85em}figure{margin:1em 0}img{max-width:100%}
figure.wide{overflow-x:auto}figure.wide img{max-width:none}
dl dt{font-weight:bold;margin-top:.6em}code{background:#f4f4f4;padding:0 .2em}
"""

_COLUMNS = [(m.column, m.collection, m.key, m.one_line) for m in HEADLINE]


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _fmt(v, digits=3) -> str:
    return "" if v is None or v != v else f"{v:.{digits}f}"


def _table_html(lb) -> str:
    long = lb.long.set_index(["model", "collection", "metric"])
    cols = [c for c in _COLUMNS if c[0] in lb.table and lb.table[c[0]].notna().any()]
    head = "".join(f"<th>{html.escape(label)}</th>" for *_, label in cols)
    rows = []
    for _, r in lb.table.iterrows():
        cells = []
        for col, coll, metric, _ in cols:
            v = r[col]
            ci = ""
            key = (r["model"], coll, metric)
            if key in long.index:
                lo, hi = long.loc[key, "ci_low"], long.loc[key, "ci_high"]
                if lo == lo and hi == hi:
                    ci = f' <span class="ci">[{_fmt(lo)}, {_fmt(hi)}]</span>'
            cells.append(f"<td>{_fmt(v)}{ci}</td>")
        rank = "control" if r["control"] else ("" if r["rank"] != r["rank"] else str(int(r["rank"])))
        cls = ' class="control"' if r["control"] else ""
        rows.append(f"<tr{cls}><td>{html.escape(str(r['model']))}</td>{''.join(cells)}<td>{rank}</td></tr>")
    return (
        f'<table id="leaderboard"><thead><tr><th>model</th>{head}<th>rank</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


DEPTH_TEXT = (
    "A prediction of each spot's sequencing depth alone, which knows nothing about any gene, scores "
    "the depth baseline: within a WSI, most genes rise and fall with depth, and deep, cellular tissue "
    "is visible on H&E. The depth-adjusted number is the partial correlation of measured and "
    "predicted expression given depth, what a model recovers beyond depth (0 for depth alone)."
)


def _depth_html(lb) -> str:
    """Raw, depth baseline and depth-adjusted numbers side by side, with the flags."""
    from .compare.leaderboard import DEPTH_BASELINE_ROW

    t = lb.table.set_index("model")
    if DEPTH_BASELINE_ROW not in t.index:
        return ""
    base = t.loc[DEPTH_BASELINE_ROW]
    groups = [(f"GPC {c}", f"gpc_{c}", f"gpc_depth_adjusted_{c}") for c in lb.info.get("collections", [])]
    groups += [("HVG PCC macro", "hvg_pcc_macro", "hvg_pcc_depth_adjusted_macro")]
    groups = [g for g in groups if g[1] in t]
    head = "".join(f'<th colspan="3">{html.escape(label)}</th>' for label, *_ in groups)
    sub = "<th>raw</th><th>depth baseline</th><th>adjusted</th>" * len(groups)
    rows = []
    for m, r in t.iterrows():
        if m == DEPTH_BASELINE_ROW:
            continue
        cells = "".join(
            f"<td>{_fmt(r[raw])}</td><td>{_fmt(base[raw])}</td><td>{_fmt(r.get(adj))}</td>"
            for _, raw, adj in groups
        )
        flag = html.escape(str(r.get("depth_flag") or ""))
        rows.append(f"<tr><td>{html.escape(str(m))}</td>{cells}<td>{flag}</td></tr>")
    return (
        f'<h2 id="depth">Biology, not depth</h2><p>{html.escape(DEPTH_TEXT)}</p>'
        f'<table id="depth-table"><thead><tr><th>model</th>{head}<th>flag</th></tr>'
        f"<tr><th></th>{sub}<th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _provenance_html(lb) -> str:
    items = []
    for model, info in lb.info["runs"].items():
        inputs = info.get("inputs") or {}
        files = []
        for role, rec in sorted(inputs.items()):
            if isinstance(rec, dict) and rec.get("file"):
                sha = rec.get("sha256")
                files.append(
                    f"{role}: <code>{html.escape(str(rec['file']))}</code>"
                    + (f" sha256 <code>{sha[:16]}</code>" if sha else "")
                )
        items.append(
            f"<dt>{html.escape(model)}</dt><dd>run folder <code>{html.escape(info['path'])}</code>; "
            f"gpc-bench {html.escape(str(info.get('gpc_bench_version')))}; pathways "
            f"<code>{html.escape(str(info.get('collection_id')))}</code><br>{'<br>'.join(files)}</dd>"
        )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in lb.info["notes"])
    proto = lb.info.get("protocol") or {}
    if proto:
        devs = "".join(f"<li>{html.escape(d)}</li>" for d in proto.get("deviations_from_published", []))
        notes += (
            f'<li id="protocol">protocol <b>{html.escape(str(proto.get("name")))}</b>; deviations from the '
            f"published computation: {('<ul>' + devs + '</ul>') if devs else 'none'}</li>"
        )
    return (
        f"<p>Reference: <b>{html.escape(lb.info['reference'])}</b>. Bootstrap: {lb.info['n_boot']} draws, "
        f"seed {lb.info['seed']} ({html.escape(lb.info['bootstrap'])}). WSIs: {len(lb.info['wsis'])}. "
        f"Report written by gpc-bench {__version__}.</p>"
        + (f"<ul>{notes}</ul>" if notes else "")
        + f"<dl>{''.join(items)}</dl>"
    )


def _pathways_html(lb, rs, n: int = 8) -> str:
    """Per pathway: where each model differs most from the reference (paired test over WSIs, BH
    adjusted), and each model's best and worst pathways, with the variance-matched null z when
    ``gpc-bench null`` was run on the run folder."""
    import pandas as pd

    from .compare.leaderboard import fmt_p

    ref = lb.info["reference"]
    parts = []
    comp = lb.comparison
    for m in [x for x in lb.table["model"] if x != ref]:
        c = comp[comp["model"] == m].copy()
        if c.empty:
            continue
        c["_abs"] = c["difference"].abs()
        c = c.sort_values(["p_adjusted", "_abs"], ascending=[True, False], na_position="last").head(n)
        rows = "".join(
            f"<tr><td>{html.escape(str(r.pathway))}</td><td>{html.escape(str(r.collection))}</td>"
            f"<td>{_fmt(r.gpc_model)}</td><td>{_fmt(r.gpc_reference)}</td><td>{_fmt(r.difference)}</td>"
            f"<td>{fmt_p(r.p_value)}</td><td>{fmt_p(r.p_adjusted)}</td></tr>"
            for r in c.itertuples(index=False)
        )
        parts.append(
            f"<h3>{html.escape(m)} against {html.escape(ref)}: the largest differences</h3>"
            f'<table class="pathways"><thead><tr><th>pathway</th><th>collection</th><th>{html.escape(m)}</th>'
            f"<th>{html.escape(ref)}</th><th>difference</th><th>Wilcoxon p</th><th>BH-adjusted p</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>"
        )
    for m in lb.table["model"]:
        if m not in rs.runs:  # the depth baseline row: computed, no run folder of its own
            continue
        run = rs.runs[m]
        ps = run.pathway_scores
        ps = ps[ps["status"] == "ok"]
        null_p = run.path / "pathway_null.csv"
        z = None
        if null_p.is_file():
            z = pd.read_csv(null_p).set_index(["collection", "pathway"])["z"]
        head = "<th>null z</th>" if z is not None else ""

        def rows_of(df, z=z):
            out = []
            for r in df.itertuples(index=False):
                zz = "" if z is None else _fmt(z.get((r.collection, r.pathway), float("nan")), 2)
                cell = f"<td>{zz}</td>" if z is not None else ""
                out.append(
                    f"<tr><td>{html.escape(str(r.pathway))}</td><td>{html.escape(str(r.collection))}</td>"
                    f"<td>{_fmt(r.gpc)}</td>{cell}</tr>"
                )
            return "".join(out)

        g = ps["gpc"].to_numpy(dtype=float)
        g = g[np.isfinite(g)]
        if g.size == 0 or np.ptp(g) == 0:  # a constant control: no pathway is better than another
            value = "no pathway is scored" if g.size == 0 else f"every pathway scores {_fmt(float(g[0]))}"
            parts.append(
                f"<h3>{html.escape(m)}: best and worst pathways</h3>"
                f'<p class="flat">Nothing varies: {value}, so no pathway is better or worse than another.</p>'
            )
            continue
        k = min(n // 2, (len(ps) + 1) // 2)  # a pathway is listed once, as best or as worst
        best = ps.sort_values("gpc", ascending=False, kind="stable").head(k)
        worst = ps.drop(best.index).sort_values("gpc", ascending=True, kind="stable").head(k)
        note = "" if z is not None else " (run <code>gpc-bench null</code> on the run folder for a null z)"
        parts.append(
            f"<h3>{html.escape(m)}: best and worst pathways</h3>"
            f'<table class="pathways"><thead><tr><th>pathway</th><th>collection</th><th>GPC</th>{head}</tr></thead>'
            f"<tbody>{rows_of(best)}<tr><td colspan=3>...</td></tr>{rows_of(worst)}</tbody></table>"
            f'<p class="ci">variance-matched null{note}</p>'
        )
    return "".join(parts)


def _warnings_html(lb) -> str:
    items = [
        f"<li><b>{html.escape(m)}</b>: {html.escape(w)}</li>"
        for m, ws in lb.info.get("warnings", {}).items()
        for w in ws
    ]
    items += [f"<li>{html.escape(n)}</li>" for n in lb.info["notes"]]
    return f'<h2>Warnings</h2><ul id="warnings">{"".join(items)}</ul>' if items else ""


def report(
    runs: Sequence[str | Path | Result],
    out: str | Path,
    *,
    reference: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    intersect: bool = False,
    controls: Sequence[str] = (),
    title: str = "gpc-bench report",
    overwrite: bool = False,
    board: Leaderboard | None = None,
) -> Path:
    """Write one self-contained HTML report for several run folders.

    It holds the leaderboard (with bootstrap intervals), the figures inlined as PNG data URIs
    (leaderboard table, GPC by variance level, each model against the reference, the gene
    variance density), the provenance of every run and a short explanation of each metric.
    ``board``: the :class:`~gpc_bench.compare.Leaderboard` of the same runs, when already computed.
    """
    from .compare import leaderboard
    from .compare.runs import load_runs
    from .io.runfolder import check_out
    from .plot import leaderboard_table, levels, scatter, variance

    inputs = [r for r in runs if isinstance(r, str | Path)]
    check_out(out, kind="report", overwrite=overwrite, inputs=inputs, folder=False)
    rs = load_runs(runs, intersect=intersect, controls=controls)
    # a leaderboard already computed on these runs is reused (the demo writes both)
    lb = board if board is not None else leaderboard(rs, reference, n_boot=n_boot, seed=seed)
    ref = lb.info["reference"]
    figures = [
        ("Leaderboard", _png(leaderboard_table(lb))),
        ("GPC by variance level", _png(levels([rs.runs[m] for m in rs.models], controls=rs.controls))),
    ]
    others = [m for m in rs.models if m != ref][:MAX_SCATTERS]
    for m in others:
        figures.append((f"{m} against {ref}, per pathway", _png(scatter(rs.runs[m], rs.runs[ref]))))
    figures.append((f"Gene variance and level thresholds ({ref})", _png(variance(rs.runs[ref]))))
    figs = "".join(  # the leaderboard at its own size (scrolling if wide): its numbers stay readable
        f'<figure{" class=wide" if k == 0 else ""}><img alt="{html.escape(cap)}" src="{src}">'
        f"<figcaption>{html.escape(cap)}</figcaption></figure>"
        for k, (cap, src) in enumerate(figures)
    )
    metrics = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in METRICS)
    doc = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="generator" content="gpc-bench {__version__}">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f'<p id="reference">Reference model: <b>{html.escape(ref)}</b>; win rates and tests compare each '
        f"model with it. {len(lb.info['wsis'])} WSIs"
        + (
            f"; controls (not ranked): {html.escape(', '.join(lb.info['controls']))}"
            if lb.info["controls"]
            else ""
        )
        + ".</p>"
        f"{_warnings_html(lb)}"
        f"<h2>Leaderboard</h2>{_table_html(lb)}"
        f"{_depth_html(lb)}"
        f"<h2>Figures</h2>{figs}"
        f'<h2 id="per-pathway">Per pathway</h2>{_pathways_html(lb, rs)}'
        f"<h2>Metrics</h2><dl>{metrics}</dl>"
        f"<h2>Provenance</h2>{_provenance_html(lb)}"
        "<script>window.addEventListener('load',function(){var n=0;for(var i of document.images)"
        "{if(i.complete&&i.naturalWidth>0)n++;}document.body.setAttribute('data-images-loaded',n);"
        "var t=document.images[0];document.body.setAttribute('data-leaderboard-scale',"
        "(t.clientWidth/t.naturalWidth).toFixed(3));});</script>"
        "</body></html>\n"
    )
    out = Path(out)
    with atomic_file(out, check=True, kind="report", overwrite=overwrite, inputs=inputs) as tmp:
        tmp.write_text(doc, encoding="utf-8")
    logger.info("wrote %s (%d figures, %.1f MB)", out, len(figures), out.stat().st_size / 1e6)
    return out
