"""How much of a score is sequencing depth? her2st controls scored raw, as the depth baseline, and
depth-adjusted (the numbers of docs/metrics.md, "Confounds").

Eight her2st sections (A1-A4, B1-B4; the genes measured in all of them) as truth, with
``obs["total_counts"]`` (so the depth covariate is log1p of the spot's total counts), scored twice:
log1p of the raw counts (``--truth-log1p``) and log1p of counts per 10,000 (``--truth-normalize
1e4``). Predictions, each made from that same truth:

- ``knn``: each spot predicted as the mean of its 6 nearest spots on the array (itself left out);
- ``depth-only``: every gene of a spot predicted as log1p(total counts of the spot);
- ``shuffled``: the measured spots of each section in a random order.

    python benchmarks/her2st_confounds.py --shared ../shared/data --json /tmp/confounds.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

SECTIONS = ("A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4")
COLUMNS = ("gpc_hallmark", "gpc_go", "hvg_pcc_macro")


def load(shared: Path):
    """Raw counts (spots x genes), obs (sample_id, cancer_type, total_counts) and array coordinates."""
    import pandas as pd

    frames = []
    for s in SECTIONS:
        df = pd.read_csv(shared / "her2st" / "ST-cnts" / f"{s}.tsv.gz", sep="\t", index_col=0)
        frames.append((s, df.loc[:, ~df.columns.duplicated()]))
    genes = sorted(set.intersection(*(set(f.columns) for _, f in frames)))
    counts = np.concatenate([f[genes].to_numpy(np.float32) for _, f in frames])
    obs = pd.concat(
        [
            pd.DataFrame(
                {"sample_id": s, "cancer_type": "HER2+" if s[0] == "B" else "LUMA",
                 "total_counts": f.to_numpy(np.float64).sum(1)},
                index=[f"{s}:{i}" for i in f.index],
            )
            for s, f in frames
        ]
    )  # fmt: skip
    coords = np.concatenate(
        [np.array([[float(v) for v in i.split("x")] for i in f.index]) for _, f in frames]
    )
    return counts, obs, genes, coords


def knn_smooth(x: np.ndarray, coords: np.ndarray, samples: np.ndarray, k: int = 6) -> np.ndarray:
    """Each spot as the mean of its ``k`` nearest spots of the same section (itself left out)."""
    from scipy.spatial import cKDTree

    out = np.empty_like(x)
    for s in np.unique(samples):
        rows = np.flatnonzero(samples == s)
        _, nn = cKDTree(coords[rows]).query(coords[rows], k=k + 1)
        out[rows] = x[rows][nn[:, 1:]].mean(axis=1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import anndata as ad

    import gpc_bench

    counts, obs, genes, coords = load(args.shared)
    samples = obs["sample_id"].to_numpy()
    rng = np.random.default_rng(0)
    truth = ad.AnnData(counts, obs=obs)
    truth.var_names = genes
    depth = np.log1p(obs["total_counts"].to_numpy())
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        truth_path = Path(tmp) / "truth.h5ad"
        truth.write_h5ad(truth_path)
        for norm, option in (("log1p", {"truth_log1p": True}), ("cp10k", {"truth_normalize": 1e4})):
            x = np.log1p(counts)
            if norm == "cp10k":
                x = np.log1p(counts / counts.sum(1, keepdims=True).clip(1) * 1e4).astype(np.float32)
            shuffled = x.copy()
            for s in np.unique(samples):
                rows = np.flatnonzero(samples == s)
                shuffled[rows] = x[rng.permutation(rows)]
            preds = {
                "knn": knn_smooth(x, coords, samples),
                "depth-only": np.repeat(depth[:, None], len(genes), 1).astype(np.float32),
                "shuffled": shuffled,
            }
            for name, px in preds.items():
                pred = ad.AnnData(px.astype(np.float32), obs=obs[["sample_id", "cancer_type"]])
                pred.var_names = genes
                res = gpc_bench.score(pred, truth_path, name=name, checksum=False, **option)
                h = res.headline
                results[f"{name} ({norm})"] = {
                    **{c: h[c] for c in COLUMNS},
                    **{f"{c}_baseline": h[_variant(c, "depth_baseline")] for c in COLUMNS},
                    **{f"{c}_adjusted": h[_variant(c, "depth_adjusted")] for c in COLUMNS},
                    "depth": res.summary["depth"]["description"],
                }
    text = json.dumps(results, indent=2)
    print(text)
    print(table(results))
    if args.json:
        args.json.write_text(text + "\n")


def _variant(column: str, name: str) -> str:
    if column.startswith("gpc_"):
        return f"gpc_{name}_{column.removeprefix('gpc_')}"
    return f"hvg_pcc_{name}_{column.removeprefix('hvg_pcc_')}"


def table(results: dict) -> str:
    """Markdown: raw / depth baseline / adjusted per column."""
    head = "| prediction (truth) | " + " | ".join(f"{c}: raw / baseline / adjusted" for c in COLUMNS) + " |"
    rows = [head, "|---|" + "---|" * len(COLUMNS)]
    for name, r in results.items():
        cells = [f"{r[c]:.3f} / {r[c + '_baseline']:.3f} / {r[c + '_adjusted']:.3f}" for c in COLUMNS]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
