"""The reference model end to end on real H&E: her2st, six sections with images.

Featurize the six sections that have H&E images (B4, C2-C6) with the pixel-feature stand-in, train
HistoPrism on five (C2-C5 train, C6 validation for early stopping), predict B4, and score it next to
the training mean profile (a constant-per-WSI control). The numbers in docs/model.md come from:

    python benchmarks/her2st_model.py --shared ../shared/data --out /tmp/her2st-model
    python benchmarks/her2st_model.py --shared ../shared/data --out /tmp/her2st-published \
        --targets published --schedule warmup-linear     # the published training's options

The test suite runs the same function on a shorter budget when ../shared is present.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

SECTIONS = {"B4": "test", "C2": "train", "C3": "train", "C4": "train", "C5": "train", "C6": "val"}


def _counts(data: Path, section: str):
    import pandas as pd

    df = pd.read_csv(data / "her2st" / "ST-cnts" / f"{section}.tsv.gz", sep="\t", index_col=0)
    return df.loc[:, ~df.columns.duplicated()]


def run(
    data: Path,
    out: Path,
    max_epochs: int = 300,
    patience: int = 30,
    min_detected: float = 0.1,
    n_components: int = 64,
    patch_size: int = 160,
    seed: int = 0,
    targets: str = "nan-mask",
    schedule: str = "constant",
) -> dict:
    """Featurize, train, predict and score; returns the headline numbers of the model and the control."""
    import anndata as ad
    import pandas as pd
    import yaml

    import gpc_bench
    from gpc_bench.baselines.histoprism.config import load_config
    from gpc_bench.baselines.histoprism.featurize import featurize_manifest
    from gpc_bench.baselines.histoprism.predict import predict
    from gpc_bench.baselines.histoprism.train import train

    out.mkdir(parents=True, exist_ok=True)
    data = data.resolve()
    rows = []
    for s, split in SECTIONS.items():
        image = next((data / "her2st" / "ST-imgs" / s[0] / s).glob("*.jpg"))
        rows.append(
            {
                "sample_id": s,
                "image": image,
                "spots": data / "her2st" / "ST-spotfiles" / f"{s}_selection.tsv",
                "split": split,
                "cancer_type": "IDC",
            }
        )
    meta = pd.DataFrame(rows)
    meta.to_csv(out / "manifest.csv", index=False)
    meta[["sample_id", "cancer_type", "split"]].to_csv(out / "metadata.csv", index=False)
    featurize_manifest(
        out / "manifest.csv", out / "embeddings", n_components=n_components, patch_size=patch_size
    )
    counts = {s: _counts(data, s) for s in SECTIONS}
    # panel: genes measured in all six sections and detected in >= min_detected of the training spots
    common = sorted(set.intersection(*(set(c.columns) for c in counts.values())))
    train_counts = pd.concat([counts[s][common] for s, sp in SECTIONS.items() if sp == "train"])
    panel = [
        g for g, f in zip(common, (train_counts > 0).mean().to_numpy(), strict=True) if f >= min_detected
    ]
    (out / "expression").mkdir(exist_ok=True)
    for s, c in counts.items():
        ad.AnnData(
            c.to_numpy(np.float32), obs=pd.DataFrame(index=c.index), var=pd.DataFrame(index=c.columns)
        ).write_h5ad(out / "expression" / f"{s}.h5ad")
    (out / "panel.txt").write_text("\n".join(panel) + "\n")
    cfg = {
        "data": {
            "metadata": "metadata.csv",
            "embeddings": "embeddings",
            "expression": "expression",
            "genes": "panel.txt",
            "log1p": True,
            "targets": targets,
        },
        "model": {},
        "train": {"max_epochs": max_epochs, "patience": patience, "seed": seed, "schedule": schedule},
        "out": "run",
    }
    (out / "config.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    summary = train(load_config(out / "config.yml"), overwrite=True, device="cpu")
    predict(out / "run" / "checkpoint.pt", out / "pred_B4.h5ad", overwrite=True, device="cpu")
    pred = ad.read_h5ad(out / "pred_B4.h5ad")
    train_log = np.log1p(train_counts[list(pred.var_names)].to_numpy(np.float64))
    control = pred.copy()
    control.X = np.broadcast_to(train_log.mean(0), pred.shape).astype(np.float32).copy()
    truth = pred.layers["truth"]
    # an oracle that knows only each spot's sequencing depth (log1p of its total counts), the same
    # value for every gene: how much of the score spot depth alone explains
    depth = pred.copy()
    b4 = counts["B4"].loc[list(pred.obs_names)]
    depth.X = np.repeat(np.log1p(b4.to_numpy(np.float64).sum(1))[:, None], pred.n_vars, 1).astype(np.float32)
    res = {}
    for a in (pred, control, depth):  # the depth covariate of the adjusted scores: log1p(total counts)
        a.obs["total_counts"] = b4.to_numpy(np.float64).sum(1)
    for name, a in (("histoprism", pred), ("train_mean", control), ("depth_oracle", depth)):
        scored = gpc_bench.score(a, name=name, cluster="none")
        h = scored.headline
        gene_r = scored.gene_scores["pcc"].to_numpy(dtype=float)
        res[name] = {
            "mse": float(np.mean((a.X - truth) ** 2)) if name != "depth_oracle" else None,
            "mean_gene_r": float(np.nanmean(gene_r)),
            "hvg_pcc": h["hvg_pcc_macro"],
            "gpc_hallmark": h["gpc_hallmark"],
            "gpc_go": h["gpc_go"],
            "gpc_hallmark_depth_adjusted": h["gpc_depth_adjusted_hallmark"],
            "gpc_go_depth_adjusted": h["gpc_depth_adjusted_go"],
            "hvg_pcc_depth_adjusted": h["hvg_pcc_depth_adjusted_macro"],
            "gpc_hallmark_depth_baseline": h["gpc_depth_baseline_hallmark"],
            "gpc_go_depth_baseline": h["gpc_depth_baseline_go"],
            "hvg_pcc_depth_baseline": h["hvg_pcc_depth_baseline_macro"],
            "n_pathways_scored": scored.summary["counts"]["n_pathways_scored"],
        }
    res["panel_genes"] = len(panel)
    res["options"] = {"targets": targets, "schedule": schedule}
    res["spots"] = {s: int(len(c)) for s, c in counts.items()}
    res["training"] = {
        k: summary[k] for k in ("epochs", "best_epoch", "best_val_mse", "n_parameters", "seconds")
    }
    (out / "her2st_model.json").write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/her2st-model"))
    ap.add_argument("--max-epochs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--targets", choices=["nan-mask", "published"], default="nan-mask")
    ap.add_argument("--schedule", choices=["constant", "warmup-linear"], default="constant")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    res = run(args.shared, args.out, max_epochs=args.max_epochs, seed=args.seed, targets=args.targets,
              schedule=args.schedule)  # fmt: skip
    print(json.dumps(res, indent=2))
