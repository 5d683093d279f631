"""Tissue domains on real data: her2st's pathologist-labelled sections.

her2st ships pathologist region labels for one section of each patient
(``ST-pat/lbl/<section>_labeled_coordinates.tsv``: array coordinates and a label per spot). This
builds those sections as one truth (log1p counts, ``obs["region"]``, pixel coordinates; the label
"undetermined" is left unannotated), a simple prediction (each spot's measured expression averaged
with its 6 nearest neighbours: spatially smoothed truth) and a constant one (the section's mean
profile), scores each with ``--domains --domain-key region``, and prints per section and on
average the agreement of the measured and predicted domains with the regions and with each other.
The numbers in docs/metrics.md come from:

    python benchmarks/her2st_domains.py --shared ../shared/data --domains kmeans
    python benchmarks/her2st_domains.py --shared ../shared/data --domains leiden

The test suite runs :func:`labelled_cohort` and :func:`run` on two sections when ../shared is there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

#: the sections with pathologist labels and counts (J1's label file has no count matrix)
LABELLED = ("A1", "B1", "C1", "D1", "E1", "F1", "G2", "H1")


def _section(data: Path, section: str):
    import pandas as pd

    root = data / "her2st"
    counts = pd.read_csv(root / "ST-cnts" / f"{section}.tsv.gz", sep="\t", index_col=0)
    counts = counts.loc[:, ~counts.columns.duplicated()]
    spots = pd.read_csv(root / "ST-spotfiles" / f"{section}_selection.tsv", sep="\t")
    spots.index = [f"{x}x{y}" for x, y in zip(spots["x"], spots["y"], strict=True)]
    lbl = pd.read_csv(root / "ST-pat" / "lbl" / f"{section}_labeled_coordinates.tsv", sep="\t")
    lbl = lbl.dropna(subset=["x", "y"])
    # the label file gives array coordinates to 3 decimals: the spot is the nearest integer pair
    lbl.index = [f"{round(x)}x{round(y)}" for x, y in zip(lbl["x"], lbl["y"], strict=True)]
    lbl = lbl[~lbl.index.duplicated()]
    common = [b for b in counts.index if b in spots.index]
    region = lbl["label"].reindex(common).where(lambda s: s != "undetermined")
    return counts.loc[common], spots.loc[common, ["pixel_x", "pixel_y"]].to_numpy(np.float64), region


def labelled_cohort(data: Path, sections=LABELLED):
    """``(truth, smoothed, constant)`` AnnData of the labelled sections (genes: their union)."""
    import anndata as ad
    import pandas as pd
    from scipy.spatial import cKDTree

    frames, obs, coords, smooth, const = [], [], [], [], []
    for s in sections:
        counts, xy, region = _section(Path(data), s)
        frames.append(counts)
        obs.append(pd.DataFrame({"sample_id": s, "cancer_type": "BRCA", "region": region.to_numpy()},
                                index=[f"{s}_{b}" for b in counts.index]))  # fmt: skip
        coords.append(xy)
    counts = pd.concat(frames).fillna(0)
    x = np.log1p(counts.to_numpy(np.float32))
    o = pd.concat(obs)
    for s, xy in zip(sections, coords, strict=True):
        rows = np.flatnonzero(o["sample_id"].to_numpy() == s)
        _, nb = cKDTree(xy).query(xy, k=min(7, len(xy)))  # the spot and its 6 nearest
        smooth.append(x[rows][nb].mean(axis=1))
        const.append(np.repeat(x[rows].mean(axis=0, keepdims=True), len(rows), axis=0))
    var = pd.DataFrame(index=counts.columns.astype(str))
    truth = ad.AnnData(x, obs=o, var=var)
    truth.obsm["spatial"] = np.concatenate(coords)
    pred_obs = o.drop(columns="region")
    smoothed = ad.AnnData(np.concatenate(smooth).astype(np.float32), obs=pred_obs, var=var)
    constant = ad.AnnData(np.concatenate(const).astype(np.float32), obs=pred_obs, var=var)
    return truth, smoothed, constant


def run(data: Path, sections=LABELLED, domains: str = "kmeans", k: int = 5) -> dict:
    """Per model, the per-section domain metrics and their means."""
    import gpc_bench

    truth, smoothed, constant = labelled_cohort(data, sections)
    out = {}
    for name, pred in (("smoothed", smoothed), ("constant", constant)):
        res = gpc_bench.score(
            pred, truth, checksum=False, domains=domains, domain_clusters=k, domain_key="region", name=name
        )
        w = res.table("wsi_metrics").pivot(index="sample_id", columns="metric", values="value")
        cols = [c for c in w.columns if c.startswith(("domain_", "annot_"))]
        out[name] = {
            "per_section": w[cols].round(4).to_dict(orient="index"),
            "mean": w[cols].mean().round(4).to_dict(),
            "config": {"domains": res.summary["config"]["domains"], "domain_clusters": k},
            "gpc_hallmark": round(res.headline["gpc_hallmark"], 4),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--domains", default="kmeans", choices=["kmeans", "leiden"])
    ap.add_argument("--clusters", type=int, default=5, help="k-means clusters per section")
    ap.add_argument("--out", type=Path, help="also write the numbers as JSON here")
    args = ap.parse_args()
    res = run(args.shared, domains=args.domains, k=args.clusters)
    keys = (
        "annot_truth_ari",
        "annot_pred_ari",
        "domain_ari",
        "annot_truth_nmi",
        "annot_pred_nmi",
        "domain_nmi",
    )
    print(f"{'model':10s} " + " ".join(f"{k:>16s}" for k in keys))
    for name, r in res.items():
        print(
            f"{name:10s} "
            + " ".join(f"{r['mean'][k]:16.3f}" for k in keys)
            + f"  GPC Hallmark {r['gpc_hallmark']}"
        )
    if args.out:
        args.out.write_text(json.dumps(res, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
