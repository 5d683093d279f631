"""MSE, R², CCC and RVD from the co-moments against loops over spots (HEST-Benchmark's R² formula)."""

from __future__ import annotations

import numpy as np
import pytest

from gpc_bench import score


def _reference(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Per gene, written out over the spots: np.mean((x - y)^2); HEST's 1 - SSE/SST; Lin's CCC with
    population moments; ((var y - var x) / var x)^2."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    mse = float(np.mean((x - y) ** 2))
    sst = float(np.sum((x - x.mean()) ** 2))
    vx, vy = np.var(x), np.var(y)
    cov = float(np.mean((x - x.mean()) * (y - y.mean())))
    denom = vx + vy + (x.mean() - y.mean()) ** 2
    return {
        "mse": mse,
        "r2": 1 - np.sum((x - y) ** 2) / sst if sst > 0 else np.nan,
        "ccc": 2 * cov / denom if denom > 0 else np.nan,
        "rvd": ((vy - vx) / vx) ** 2 if vx > 0 else np.nan,
    }


@pytest.mark.parametrize("model", ["noisy", "good"])
def test_error_metrics_match_loops_over_spots(cohort, cohort_files, model):
    pred = cohort.predictions[model]
    res = score(pred, cohort.truth, pathways=cohort_files["pathways"], checksum=False)
    gs = res.gene_scores.set_index(["sample_id", "gene"])
    genes = list(pred.var_names)
    t = cohort.truth[pred.obs_names, genes]
    sid = pred.obs["sample_id"].to_numpy()
    checked = 0
    for s in sorted(set(sid))[:3]:
        x, y = np.asarray(t.X)[sid == s], np.asarray(pred.X)[sid == s]
        for j in range(0, len(genes), 37):
            want = _reference(x[:, j], y[:, j])
            for name, v in want.items():
                got = gs.loc[(s, genes[j]), name]
                assert (np.isnan(v) and np.isnan(got)) or got == pytest.approx(v, rel=1e-6, abs=1e-9), (
                    s,
                    j,
                    name,
                )
            checked += 1
    assert checked > 30
    # the pathway and headline reductions are those of r: a pathway's mean over WSIs of its genes' mean
    pw = res.pathway_scores.set_index("pathway")
    members = res.pathway_genes.groupby("pathway", observed=True)["gene"].apply(list)
    name = members.index[0]
    per_wsi = gs["mse"].unstack("gene")[members[name]]
    assert pw.loc[name, "gpc_mse"] == pytest.approx(
        np.nanmean(np.nanmean(per_wsi.to_numpy(), axis=1)), rel=1e-9
    )
    assert res.headline["gpc_ccc_hallmark"] is not None


def test_error_metrics_see_what_correlation_does_not(cohort, cohort_files):
    """A prediction off by a constant and shrunk to a tenth of the spread keeps r and loses CCC, R²."""
    truth = cohort.truth
    pred = cohort.predictions["good"].copy()
    shifted = pred.copy()
    shifted.X = 0.1 * pred.X + 2.0
    a = score(pred, truth, pathways=cohort_files["pathways"], checksum=False)
    b = score(shifted, truth, pathways=cohort_files["pathways"], checksum=False)
    assert b.headline["gpc_go"] == pytest.approx(a.headline["gpc_go"], abs=1e-5)  # r cannot tell
    assert b.headline["gpc_ccc_go"] < a.headline["gpc_ccc_go"] - 0.1
    assert b.headline["gpc_r2_go"] < a.headline["gpc_r2_go"]
    assert b.headline["gpc_mse_go"] > a.headline["gpc_mse_go"]
    assert b.headline["gpc_rvd_go"] > a.headline["gpc_rvd_go"]


def test_pooled_error_metrics_are_over_the_concatenated_spots(cohort, cohort_files):
    pred = cohort.predictions["noisy"]
    res = score(
        pred, cohort.truth, pathways=cohort_files["pathways"], protocol="stpath-pooled", checksum=False
    )
    genes = list(pred.var_names)
    t = cohort.truth[pred.obs_names, genes]
    ctype = pred.obs["cancer_type"].to_numpy()
    c = sorted(set(ctype))[0]
    x, y = np.asarray(t.X)[ctype == c], np.asarray(pred.X)[ctype == c]
    idx = [j for j in range(len(genes)) if np.ptp(x[:, j]) > 0][:40]
    want = np.nanmean([_reference(x[:, j], y[:, j])["ccc"] for j in idx])
    from gpc_bench.metrics.errors import CCC

    assert list(res.stats.genes) == genes
    got = CCC.compute(res.stats, None, list(res.stats.cancer_types))
    k = sorted(set(res.stats.cancer_types)).index(c)
    assert np.nanmean(got[k, idx]) == pytest.approx(want, rel=1e-6)
