"""Declared per-WSI metrics: the shipped all-gene PCC against scipy, and a metric plugged in by
one declaration reaching the summary, the tables, the leaderboard and --intersect."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr

from gpc_bench import score
from gpc_bench.metrics import registry
from gpc_bench.metrics._declare import WsiMetric


def _reference_all_gene_pcc(truth, pred):
    """Per WSI, the mean over genes of scipy's r (constant truth left out, constant prediction 0)."""
    sid = truth.obs["sample_id"].astype(str).to_numpy()
    x, y = np.asarray(truth.X, np.float64), np.asarray(pred.X, np.float64)
    out = {}
    for s in sorted(set(sid)):
        rs = []
        for g in range(x.shape[1]):
            a, b = x[sid == s, g], y[sid == s, g]
            if np.all(a == a[0]):
                continue
            rs.append(0.0 if np.all(b == b[0]) else pearsonr(a, b)[0])
        out[s] = np.mean(rs)
    return out


def test_all_gene_pcc_matches_scipy(cohort, cohort_files):
    res = score(cohort_files["noisy"], cohort_files["truth"], pathways=[cohort_files["pathways"]])
    t = res.table("wsi_metrics")
    got = dict(zip(t["sample_id"].astype(str), t["value"], strict=True))
    want = _reference_all_gene_pcc(cohort.truth, cohort.predictions["noisy"])
    assert sorted(got) == sorted(want)
    for s in want:
        assert got[s] == pytest.approx(want[s], abs=1e-10)
    types = dict(zip(t["sample_id"].astype(str), t["cancer_type"].astype(str), strict=True))
    per_type = {c: np.mean([want[s] for s in want if types[s] == c]) for c in set(types.values())}
    assert res.headline["pcc_all_genes_macro"] == pytest.approx(np.mean(list(per_type.values())), abs=1e-12)
    assert res.headline["pcc_all_genes_micro"] == pytest.approx(np.mean(list(want.values())), abs=1e-12)


def _spread(stats, config):
    """A toy declared metric that needs the co-moments: predicted over measured SD, per WSI."""
    m = stats.moments
    ratio = np.sqrt(m[:, 3] / np.where(m[:, 1] > 0, m[:, 1], np.nan))
    return np.nanmedian(ratio, axis=1)


def test_one_declaration_plugs_a_metric_in_everywhere(cohort_files, tmp_path, monkeypatch):
    from gpc_bench.compare import leaderboard
    from gpc_bench.scoring_pcc import score_correlations

    spread = WsiMetric("sd_ratio", "SD ratio", needs="moments", compute=_spread, family="rate")
    monkeypatch.setattr(registry, "WSI_METRICS", (*registry.WSI_METRICS, spread))
    kw = {"pathways": [cohort_files["pathways"]], "checksum": False}
    a = score(cohort_files["good"], cohort_files["truth"], name="good", out=tmp_path / "a", **kw)
    b = score(cohort_files["noisy"], cohort_files["truth"], name="noisy", out=tmp_path / "b", **kw)
    assert {"sd_ratio_macro", "sd_ratio_micro"} <= set(a.headline)
    vals = a.table("wsi_metrics")
    assert set(vals["metric"]) == {"pcc_all_genes", "sd_ratio"}
    lb = leaderboard([tmp_path / "a", tmp_path / "b"], n_boot=50)
    assert lb.table.set_index("model").loc["good", "sd_ratio_micro"] == pytest.approx(
        a.headline["sd_ratio_micro"], rel=1e-12
    )
    # correlations only: the moments are not there, and the summary says so
    gs = b.gene_scores.astype({"sample_id": str, "gene": str})
    r_only = score_correlations(gs[["sample_id", "gene", "pcc"]], pathways=kw["pathways"])
    want = b.headline["pcc_all_genes_micro"]
    assert r_only.headline["pcc_all_genes_micro"] == pytest.approx(want, rel=1e-12)
    assert "sd_ratio" in r_only.summary["not_computable"]
    assert r_only.headline["sd_ratio_micro"] is None and set(r_only.headline) == set(b.headline)
