"""Test helpers: the small synthetic cohort and an independent reference scorer."""

from __future__ import annotations

import numpy as np


def make_small(seed: int = 0, **kw):
    from gpc_bench.synth import make_cohort

    params = dict(n_wsi=7, n_genes=600, n_spots=(30, 70), n_modules=6, module_size=40, seed=seed)
    params.update(kw)
    return make_cohort(**params)


# ---------------------------------------------------------------------------------------------
# An independent, obviously-correct reference: pandas alignment and scipy.stats.pearsonr per gene
# ---------------------------------------------------------------------------------------------
def reference_scores(truth, pred, gene_sets, constant_prediction="zero", min_genes=10, gene_key=None):
    """Per-(WSI, gene) r, per-(pathway, WSI) score and per-pathway GPC, computed the slow way.

    ``truth``/``pred`` are AnnData; genes are matched on ``gene_key(var)`` (default var_names).
    """
    import pandas as pd
    from scipy.stats import pearsonr

    def dense(a):
        x = a.X.toarray() if hasattr(a.X, "toarray") else np.asarray(a.X)
        return x.astype(np.float64)

    def keyed(a):
        keys = gene_key(a) if gene_key else list(a.var_names)
        df = pd.DataFrame(dense(a), columns=keys)
        df = df.loc[:, ~df.columns.duplicated()]
        df.index = pd.MultiIndex.from_arrays([a.obs["sample_id"].astype(str), a.obs_names])
        return df

    t, p = keyed(truth), keyed(pred)
    genes = [g for g in p.columns if g in set(t.columns)]
    t = t.loc[p.index, genes]
    p = p[genes]
    r = {}
    for sample in sorted(set(p.index.get_level_values(0))):
        ts, ps = t.loc[sample], p.loc[sample]
        for g in genes:
            x, y = ts[g].to_numpy(), ps[g].to_numpy()
            if np.all(x == x[0]):
                val = np.nan
            elif np.all(y == y[0]):
                val = 0.0 if constant_prediction == "zero" else np.nan
            else:
                val = pearsonr(x, y)[0]
            r[(sample, g)] = val
    r = pd.Series(r)
    samples = sorted(set(p.index.get_level_values(0)))
    pw = {}
    gpc = {}
    for name, members in gene_sets.items():
        inpanel = [g for g in dict.fromkeys(members) if g in set(genes)]
        scored = [g for g in inpanel if any(np.isfinite(r[(s, g)]) for s in samples)]
        vals = []
        for s in samples:
            rs = np.array([r[(s, g)] for g in inpanel])
            v = np.nanmean(rs) if np.isfinite(rs).any() and len(scored) >= min_genes else np.nan
            pw[(name, s)] = v
            vals.append(v)
        vals = np.array(vals)
        gpc[name] = np.nanmean(vals) if np.isfinite(vals).any() else np.nan
    return r, pd.Series(pw), pd.Series(gpc)


# ---------------------------------------------------------------------------------------------
# Hand-made run folders: the files `gpc-bench score` writes, with numbers chosen by the test
# ---------------------------------------------------------------------------------------------
def write_fake_run(
    path,
    model,
    pathway_wsi,
    hvg,
    cancer_types,
    *,
    collection_id="sha256:test",
    levels=None,
    headline=None,
    control=None,
):
    """Write a minimal run folder.

    ``pathway_wsi``: {(collection, pathway): [score per WSI]}; ``hvg``: [pcc per WSI];
    ``cancer_types``: {sample_id: type} in WSI order.
    """
    import json
    from pathlib import Path

    import pandas as pd

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    wsis = list(cancer_types)
    rows, prow = [], []
    for (coll, name), scores in pathway_wsi.items():
        s = np.asarray(scores, dtype=float)
        for w, v in zip(wsis, s, strict=True):
            rows.append((coll, name, w, cancer_types[w], v, 10))
        ok = np.isfinite(s)
        lv = (levels or {}).get((coll, name), 5)
        prow.append(
            (coll, name, 10, 10, 10, s[ok].mean() if ok.any() else np.nan, 0.0, int(ok.sum()), 1.0, lv, "ok")
        )
    pd.DataFrame(
        rows, columns=["collection", "pathway", "sample_id", "cancer_type", "score", "n_scored"]
    ).to_csv(path / "pathway_wsi_scores.csv", index=False)
    pd.DataFrame(
        prow,
        columns=[
            "collection",
            "pathway",
            "set_size",
            "n_in_panel",
            "n_scored",
            "gpc",
            "gpc_sd",
            "n_wsi",
            "variance",
            "variance_level",
            "status",
        ],
    ).to_csv(path / "pathway_scores.csv", index=False)
    pd.DataFrame(
        {
            "sample_id": wsis,
            "cancer_type": [cancer_types[w] for w in wsis],
            "n_genes": 50,
            "pcc": np.asarray(hvg, dtype=float),
        }
    ).to_csv(path / "hvg_scores.csv", index=False)
    summary = {"model": model, "headline": headline or {}, "pathways": {"collection_id": collection_id}}
    if control:
        summary["control"] = control
    (path / "summary.json").write_text(json.dumps(summary))
    return path


def score_runs(cohort_files, folder, preds):
    """Score ``{name: prediction file}`` against the cohort's truth into ``folder/<name>``."""
    from gpc_bench import score

    out = {}
    for name, pred in preds.items():
        score(
            pred,
            cohort_files["truth"],
            pathways=cohort_files["pathways"],
            name=name,
            checksum=False,
            out=folder / name,
        )
        out[name] = folder / name
    return out


def write_dense_h5ad(path, x, file_kw=None, **dataset_kw):
    """An AnnData-like file whose X is written with h5py, with the given storage options."""
    import anndata as ad
    import h5py
    import pandas as pd

    n, g = x.shape
    with h5py.File(path, "w", **(file_kw or {})) as f:
        f.attrs["encoding-type"], f.attrs["encoding-version"] = "anndata", "0.1.0"
        obs = pd.DataFrame({"sample_id": ["S1"] * n}, index=[f"s{i}" for i in range(n)])
        ad.io.write_elem(f, "obs", obs)
        ad.io.write_elem(f, "var", pd.DataFrame(index=[f"G{j}" for j in range(g)]))
        f.create_dataset("X", data=x, **dataset_kw)
    return path
