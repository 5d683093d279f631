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
