"""Real data from ../shared (skipped when absent): her2st sections, MSigDB GMTs, HEST HVG lists."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import reference_scores

from gpc_bench import load_pathways, score


def her2st_adata(data, sections):
    import anndata as ad

    frames, obs = [], []
    for s in sections:
        df = pd.read_csv(data / "her2st" / "ST-cnts" / f"{s}.tsv.gz", sep="\t", index_col=0)
        df = df.loc[:, ~df.columns.duplicated()]
        frames.append(df)
        obs.append(pd.DataFrame({"sample_id": s, "cancer_type": "IDC"}, index=df.index))
    counts = pd.concat(frames).fillna(0)
    a = ad.AnnData(counts.to_numpy(np.float32), obs=pd.concat(obs), var=pd.DataFrame(index=counts.columns))
    return a


@pytest.mark.filterwarnings("ignore:Observation names are not unique")
def test_her2st_counts_with_log1p(shared_data, tmp_path):
    """Raw counts as truth (--truth-log1p), a smoothed-neighbour 'model', checked against scipy."""
    truth = her2st_adata(shared_data, ["B1", "C1"])  # spot names repeat across sections
    logx = np.log1p(truth.X)
    rng = np.random.default_rng(0)
    pred = truth.copy()
    pred.X = (0.5 * logx + 0.5 * np.roll(logx, 1, axis=0) + rng.normal(0, 0.3, logx.shape)).astype(np.float32)
    hall = shared_data / "msigdb" / "h.all.v2025.1.Hs.symbols.gmt"
    res = score(pred, truth, pathways=[hall], truth_log1p=True)
    assert res.summary["counts"]["n_wsi"] == 2
    assert res.summary["counts"]["n_pathways_scored"] == 50
    # independent check on 300 random genes
    genes = rng.choice(truth.var_names, 300, replace=False)
    t_log = truth[:, genes].copy()
    t_log.X = np.log1p(t_log.X.astype(np.float64))
    r_ref, _, _ = reference_scores(t_log, pred[:, genes].copy(), {})
    got = res.gene_scores.set_index(["sample_id", "gene"]).pcc.loc[r_ref.index]
    np.testing.assert_allclose(got.to_numpy(), r_ref.to_numpy(), atol=1e-9)


def test_msigdb_gmt_styles(shared_data):
    h = load_pathways(shared_data / "msigdb" / "h.all.v2025.1.Hs.symbols.gmt")
    assert len(h.sets) == 50 and h.collections == ["hallmark"]
    old = load_pathways(shared_data / "msigdb" / "c5.cc.v6.2.symbols.gmt")
    assert old.collections == ["go"] and all(s.name.startswith("GO_") for s in old.sets)
    assert old.sets[0].description.startswith("http")


def test_hest_hvg_folder(shared_data):
    from gpc_bench.metrics.hvg import match_genes, read_hvg_lists

    lists = read_hvg_lists(shared_data / "histoprism" / "hest_bench_hvg50")
    assert {"IDC", "COAD", "LUNG"} <= set(lists)
    assert all(len(v) == 50 for v in lists.values()) and len(lists) == 10
    assert "union_hvg50" not in lists  # the union of the lists is not a cancer type
    union = read_hvg_lists(shared_data / "histoprism" / "hest_bench_hvg50" / "union_hvg50.json")[None]
    assert len(union) == 430
    sym = read_hvg_lists(shared_data / "histoprism" / "hest_bench_hvg50" / "IDC.symbols.json")[None]
    idx = match_genes(sym, np.array(sym, dtype=object), np.array(sym, dtype=object))
    assert len(idx) == 50
