"""Depth as a confound: the depth-adjusted r and the depth baseline against plain references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr

N_GENES = 40


def _adata(blocks, obs, genes):
    import anndata as ad

    a = ad.AnnData(np.concatenate(blocks).astype(np.float32), obs=pd.concat(obs))
    a.var_names = genes
    return a


def _cohort(seed: int = 0, depth_only: bool = False):
    """Truth and predictions with a planted depth effect, and the cases the rules name.

    WSIs: four ordinary ones (two cancer types), one whose spots all have the same depth, and one
    with a single spot. Genes: 0 constant in the truth, 1 an affine function of depth in the truth,
    2 constant in the predictions, 3 an affine function of depth in the predictions; the others
    follow depth plus a gene signal that the predictions share in part.
    """
    rng = np.random.default_rng(seed)
    genes = [f"G{i:05d}" for i in range(N_GENES)]
    sizes = [60, 45, 70, 50, 30, 1]
    truth, pred, obs = [], [], []
    a_x, a_y = rng.uniform(0.3, 1.5, N_GENES), rng.uniform(0.3, 1.5, N_GENES)
    for w, n in enumerate(sizes):
        total = rng.integers(800, 6000, n).astype(np.float64)
        if w == 4:
            total[:] = 3000.0
        d = np.log1p(total)
        signal = rng.normal(0, 1, (n, N_GENES))
        x = 2.0 + a_x * d[:, None] + signal + rng.normal(0, 0.5, (n, N_GENES))
        y = 1.0 + a_y * d[:, None] + 0.6 * signal + rng.normal(0, 0.8, (n, N_GENES))
        if depth_only:  # every gene an affine function of depth alone
            y = 1.0 + a_y * d[:, None]
        x[:, 0] = 4.0
        x[:, 1] = 1.0 + 0.5 * d
        y[:, 2] = 3.0
        y[:, 3] = 2.0 + 0.25 * d
        sample = f"S{w}"
        ctype = "A" if w % 2 == 0 else "B"
        obs.append(
            pd.DataFrame(
                {"sample_id": sample, "cancer_type": ctype, "total_counts": total},
                index=[f"{sample}:{i}" for i in range(n)],
            )
        )
        truth.append(x)
        pred.append(y)
    return _adata(truth, obs, genes), _adata(pred, [o.drop(columns="total_counts") for o in obs], genes)


def _reference(x, y, d, constant_prediction="zero"):
    """Residualise x and y on (1, d) with lstsq, then pearsonr: the partial correlation, per gene."""
    design = np.column_stack([np.ones_like(d), d])
    out = np.full(x.shape[1], np.nan)
    for g in range(x.shape[1]):
        xs, ys = x[:, g].astype(np.float64), y[:, g].astype(np.float64)
        rx = xs - design @ np.linalg.lstsq(design, xs, rcond=None)[0]
        ry = ys - design @ np.linalg.lstsq(design, ys, rcond=None)[0]
        if np.ptp(xs) == 0 or np.std(rx) <= 3e-5 * np.std(xs):
            continue  # truth constant, or a function of depth: undefined
        if np.ptp(ys) == 0 or np.std(ry) <= 3e-5 * np.std(ys):
            out[g] = 0.0 if constant_prediction == "zero" else np.nan
            continue
        out[g] = pearsonr(rx, ry)[0]
    return out


def _depth_reference(x, d, constant_prediction="zero"):
    out = np.full(x.shape[1], np.nan)
    for g in range(x.shape[1]):
        if np.ptp(x[:, g]) == 0:
            continue
        if np.ptp(d) == 0:
            out[g] = 0.0 if constant_prediction == "zero" else np.nan
            continue
        out[g] = pearsonr(x[:, g].astype(np.float64), d)[0]
    return out


def _gmt(tmp_path):
    from gpc_bench.io.gmt import GeneSet, write_gmt

    genes = [f"G{i:05d}" for i in range(N_GENES)]
    sets = [GeneSet("hallmark", f"SET{k}", tuple(genes[k * 10 : k * 10 + 12])) for k in range(3)]
    write_gmt(tmp_path / "hallmark.gmt", sets)
    return tmp_path / "hallmark.gmt"


@pytest.mark.parametrize("kernel", ["numpy", "numba"])
@pytest.mark.parametrize("constant_prediction", ["zero", "exclude"])
def test_adjusted_r_matches_residualised_pearsonr(tmp_path, kernel, constant_prediction):
    from gpc_bench import score
    from gpc_bench.settings import Settings

    pytest.importorskip(kernel) if kernel == "numba" else None
    truth, pred = _cohort()
    res = score(
        pred, truth, pathways=_gmt(tmp_path), min_genes=1, constant_prediction=constant_prediction,
        settings=Settings(kernel=kernel), checksum=False,
    )  # fmt: skip
    gs = res.gene_scores
    assert {"r_depth_adjusted", "r_depth"} <= set(gs.columns)
    assert res.summary["depth"]["column"] == "total_counts"
    assert res.summary["depth"]["transform"] == "log1p"
    for sample in truth.obs["sample_id"].unique():
        sel = (truth.obs["sample_id"] == sample).to_numpy()
        x, y = truth.X[sel], pred.X[sel]
        d = np.log1p(truth.obs["total_counts"].to_numpy()[sel])
        got = gs[gs["sample_id"] == sample].set_index("gene").loc[truth.var_names]
        want = _reference(x, y, d, constant_prediction)
        np.testing.assert_allclose(got["r_depth_adjusted"].to_numpy(), want, atol=1e-9, equal_nan=True)
        want_d = _depth_reference(x, d, constant_prediction)
        np.testing.assert_allclose(got["r_depth"].to_numpy(), want_d, atol=1e-9, equal_nan=True)
        if np.ptp(d) == 0:  # constant depth: the adjusted r is r itself
            np.testing.assert_allclose(got["r_depth_adjusted"], got["pcc"], atol=1e-12, equal_nan=True)
    s3 = gs[gs["sample_id"] == "S0"].set_index("gene")
    assert np.isnan(s3.loc["G00001", "r_depth_adjusted"])  # truth a function of depth
    fill = 0.0 if constant_prediction == "zero" else None
    for g in ("G00002", "G00003"):  # prediction constant, or a function of depth
        v = s3.loc[g, "r_depth_adjusted"]
        assert np.isnan(v) if fill is None else v == fill, g


def test_depth_only_prediction_scores_high_raw_and_exactly_zero_adjusted(tmp_path):
    from gpc_bench import score

    truth, pred = _cohort(depth_only=True)
    res = score(pred, truth, pathways=_gmt(tmp_path), min_genes=1, checksum=False)
    h = res.headline
    assert h["gpc_hallmark"] > 0.25
    assert h["gpc_depth_adjusted_hallmark"] == 0.0
    assert h["hvg_pcc_depth_adjusted_micro"] == 0.0
    # a prediction of depth alone scores what the depth baseline says it would (gene 2 is constant)
    gs = res.gene_scores[~res.gene_scores["gene"].isin(["G00002"])]
    np.testing.assert_allclose(gs["pcc"], gs["r_depth"], atol=1e-6, equal_nan=True)  # float32 storage
    ps = res.pathway_scores
    assert (ps["gpc_depth_adjusted"] == 0.0).all()


def test_adjusted_gpc_recovers_the_planted_signal(tmp_path):
    """Predictions = depth effect + signal s_g; truth = another depth effect + s_g + noise. The
    expected partial correlation given d is corr(s + e_x, s + e_y) = 1 / sqrt((1 + vx)(1 + vy))."""
    import anndata as ad

    from gpc_bench import score
    from gpc_bench.io.gmt import GeneSet, write_gmt

    rng = np.random.default_rng(3)
    n_wsi, n, n_genes = 8, 400, 60
    genes = [f"G{i:05d}" for i in range(n_genes)]
    vx, vy = 0.5, 1.0
    xs, ys, obs = [], [], []
    for w in range(n_wsi):
        total = rng.integers(500, 8000, n).astype(float)
        d = np.log1p(total)
        s = rng.normal(0, 1, (n, n_genes))
        xs.append(3 * d[:, None] + s + rng.normal(0, np.sqrt(vx), (n, n_genes)))
        ys.append(-2 * d[:, None] + s + rng.normal(0, np.sqrt(vy), (n, n_genes)))
        obs.append(pd.DataFrame({"sample_id": f"W{w}", "cancer_type": "T", "total_counts": total},
                                index=[f"W{w}:{i}" for i in range(n)]))  # fmt: skip
    o = pd.concat(obs)
    truth = ad.AnnData(np.concatenate(xs).astype(np.float32), obs=o)
    pred = ad.AnnData(np.concatenate(ys).astype(np.float32), obs=o.drop(columns="total_counts"))
    truth.var_names = pred.var_names = genes
    write_gmt(tmp_path / "hallmark.gmt", [GeneSet("hallmark", "ALL", tuple(genes))])
    res = score(pred, truth, pathways=tmp_path / "hallmark.gmt", min_genes=1, checksum=False)
    expected = 1 / np.sqrt((1 + vx) * (1 + vy))
    got = res.headline["gpc_depth_adjusted_hallmark"]
    # the mean of 480 partial r over 400 spots: SE ~ (1 - rho^2) / sqrt(400 * 480)
    assert abs(got - expected) < 0.01, (got, expected)
    assert res.headline["gpc_hallmark"] < 0  # raw r is dominated by the opposite depth effects


def test_pooled_protocol_adjusts_over_each_types_spots(tmp_path):
    """--protocol stpath-pooled: the adjusted r of a cancer type is the partial correlation over all
    its spots at once, merged from per-WSI co-moments."""
    from gpc_bench import score

    truth, pred = _cohort()
    res = score(pred, truth, pathways=_gmt(tmp_path), min_genes=1, protocol="stpath-pooled", checksum=False)
    pw = res.pathway_wsi_scores
    for ctype in ("A", "B"):
        sel = (truth.obs["cancer_type"] == ctype).to_numpy()
        d = np.log1p(truth.obs["total_counts"].to_numpy()[sel])
        want = _reference(truth.X[sel], pred.X[sel], d, "exclude")  # the pooled protocols fix pearsonr's NaN
        # pathway SET0 = genes 0..11: mean of the defined ones
        expect = np.nanmean(want[:12])
        got = pw[(pw["sample_id"] == f"pooled:{ctype}") & (pw["pathway"] == "SET0")]["gpc_depth_adjusted"]
        np.testing.assert_allclose(got.to_numpy(), [expect], atol=1e-9)


def test_depth_sources(tmp_path):
    from gpc_bench import score
    from gpc_bench._errors import InputError

    truth, pred = _cohort()
    gmt = _gmt(tmp_path)
    # an explicit column wins, used as given
    truth.obs["my_depth"] = np.log1p(truth.obs["total_counts"])
    a = score(pred, truth, pathways=gmt, min_genes=1, depth_key="my_depth", checksum=False)
    b = score(pred, truth, pathways=gmt, min_genes=1, checksum=False)
    assert a.summary["depth"]["column"] == "my_depth" and a.summary["depth"]["transform"] == "none"
    np.testing.assert_allclose(
        a.gene_scores["r_depth_adjusted"], b.gene_scores["r_depth_adjusted"], atol=1e-12
    )
    # no total_counts: log1p of the genes detected per spot
    bare = truth.copy()
    del bare.obs["total_counts"], bare.obs["my_depth"]
    c = score(pred, bare, pathways=gmt, min_genes=1, checksum=False)
    assert c.summary["depth"]["source"] == "genes_detected"
    x = bare.X[(bare.obs["sample_id"] == "S0").to_numpy()]
    d = np.log1p((x > 0).sum(axis=1).astype(float))
    got = c.gene_scores.query("sample_id == 'S0'").set_index("gene").loc[bare.var_names, "r_depth"]
    np.testing.assert_allclose(got.to_numpy(), _depth_reference(x, d), atol=1e-9, equal_nan=True)
    with pytest.raises(InputError, match="--depth-key 'nope'"):
        score(pred, truth, pathways=gmt, depth_key="nope", checksum=False)
    bad = truth.copy()
    bad.obs["total_counts"] = bad.obs["total_counts"].astype(float)
    bad.obs.iloc[3, bad.obs.columns.get_loc("total_counts")] = np.nan
    with pytest.raises(InputError, match="no finite depth"):
        score(pred, bad, pathways=gmt, checksum=False)


def test_partial_correlation_rules_directly():
    from gpc_bench.metrics.depth import depth_correlations

    # one unit, three genes: ordinary, truth collinear with d, prediction collinear with d
    m2_x = np.array([[2.0, 1.0, 2.0]])
    m2_y = np.array([[3.0, 3.0, 1.0]])
    m2_d = np.array([4.0])
    cov_xd = np.array([[1.0, 2.0, 1.0]])  # gene 1: r_xd = 2 / sqrt(1 * 4) = 1
    cov_yd = np.array([[1.0, 1.0, 2.0]])  # gene 2: r_yd = 1
    cov_xy = np.array([[1.5, 1.0, 1.0]])
    adj, base, flags = depth_correlations(m2_x, m2_y, cov_xy, cov_xd, cov_yd, m2_d)
    r_xy, r_xd, r_yd = 1.5 / np.sqrt(6), 1 / np.sqrt(8), 1 / np.sqrt(12)
    want = (r_xy - r_xd * r_yd) / np.sqrt((1 - r_xd**2) * (1 - r_yd**2))
    np.testing.assert_allclose(adj[0], [want, np.nan, 0.0], equal_nan=True)
    np.testing.assert_allclose(base[0], [r_xd, 1.0, r_xd])
    assert flags[0].tolist() == [0, 1, 2]


def test_leaderboard_shows_the_depth_baseline_and_flags_what_does_not_beat_it(tmp_path):
    from gpc_bench import score
    from gpc_bench.compare import leaderboard
    from gpc_bench.compare.leaderboard import DEPTH_BASELINE_ROW
    from gpc_bench.report import report

    truth, pred = _cohort()
    _, depth_only = _cohort(depth_only=True)
    gmt = _gmt(tmp_path)
    kw = dict(pathways=gmt, min_genes=1, checksum=False)
    score(pred, truth, name="model", out=tmp_path / "m", **kw)
    score(depth_only, truth, name="depthy", out=tmp_path / "d", **kw)
    lb = leaderboard([tmp_path / "m", tmp_path / "d"], n_boot=0)
    t = lb.table.set_index("model")
    assert t.loc[DEPTH_BASELINE_ROW, "control"] and lb.table["model"].iloc[-1] == DEPTH_BASELINE_ROW
    run = score(pred, truth, **kw)
    assert t.loc[DEPTH_BASELINE_ROW, "gpc_hallmark"] == pytest.approx(
        run.headline["gpc_depth_baseline_hallmark"]
    )
    assert t.loc["model", "gpc_depth_adjusted_hallmark"] == pytest.approx(
        run.headline["gpc_depth_adjusted_hallmark"]
    )
    assert "not above the depth baseline" in t.loc["depthy", "depth_flag"]
    assert t.loc["model", "depth_flag"] == ""
    # ranking by any declared metric
    by_adj = leaderboard([tmp_path / "m", tmp_path / "d"], n_boot=0, rank_by="gpc_depth_adjusted_hallmark")
    assert by_adj.table.set_index("model").loc["model", "rank"] == 1
    html = report([tmp_path / "m", tmp_path / "d"], tmp_path / "r.html", n_boot=0).read_text()
    assert 'id="depth"' in html and "partial correlation" in html


def test_a_few_variable_genes_get_the_coverage_warning_and_are_not_ranked_with_full_runs(
    cohort, cohort_files, tmp_path
):
    from gpc_bench import InputError, score
    from gpc_bench.compare import leaderboard

    pred = cohort.predictions["good"]
    top = np.argsort(-np.asarray(pred.X).var(axis=0))[:250]  # the 250 most variable of 600 genes
    few = pred[:, np.sort(top)].copy()
    kw = dict(pathways=cohort_files["pathways"], checksum=False)
    part = score(few, cohort_files["truth"], name="few", out=tmp_path / "few", **kw)
    score(cohort_files["good"], cohort_files["truth"], name="full", out=tmp_path / "full", **kw)
    warned = [w for w in part.summary["warnings"] if "cover 250 of the truth's 600 genes" in w]
    assert warned
    cov = part.headline["coverage"]
    assert all(v["n_scored"] <= v["n_pathways"] for v in cov.values())
    with pytest.raises(InputError, match="low coverage: few predicts 250"):
        leaderboard([tmp_path / "full", tmp_path / "few"], n_boot=0)
    lb = leaderboard([tmp_path / "full", tmp_path / "few"], n_boot=0, intersect=True)
    assert bool(lb.table.set_index("model").loc["few", "low_coverage"])


def test_null_matches_strata_and_depth_cannot_pass_it(cohort, cohort_files, tmp_path):
    from gpc_bench import score
    from gpc_bench.compare import null as nullmod

    truth = cohort.truth
    x = np.asarray(truth.X, dtype=np.float32)
    depth_only = truth.copy()
    depth_only.X = np.repeat(np.log1p((x > 0).sum(1))[:, None], x.shape[1], 1).astype(np.float32)
    kw = dict(pathways=cohort_files["pathways"], checksum=False)
    score(depth_only, cohort_files["truth"], name="depth", out=tmp_path / "d", **kw)
    good = score(cohort_files["good"], cohort_files["truth"], name="good", out=tmp_path / "g", **kw)
    nd = nullmod.pathway_null(tmp_path / "d", n_draws=200).table.dropna(subset=["z"])
    assert (nd["z"] > 2).sum() > 0  # depth alone passes the raw null...
    assert not (nd["z_depth_adjusted"] > 2).any()  # ...and never the adjusted one
    ng = nullmod.pathway_null(tmp_path / "g", n_draws=200)
    assert "mean-expression" in ng.info["matched_on"]
    t = ng.table.dropna(subset=["z"])
    assert (t["z_depth_adjusted"] > 2).sum() > 0  # planted signal survives the adjustment
    assert (t["q"] >= t["p_empirical"] - 1e-15).all()
    # BH by hand on one collection
    c = t[t["collection"] == t["collection"].iloc[0]].sort_values("p_empirical")
    p = c["p_empirical"].to_numpy()
    m = len(p)
    want = np.minimum.accumulate((p * m / np.arange(1, m + 1))[::-1])[::-1].clip(max=1)
    np.testing.assert_allclose(c["q"].to_numpy(), want)
    # every draw has the pathway's histogram of strata (where the strata were big enough)
    run = good
    gs = run.gene_scores
    genes = gs.pivot(index="sample_id", columns="gene", values="pcc").columns.to_numpy()
    level = run.gene_variance.set_index("gene")["variance_level"].reindex(genes).fillna(0).to_numpy(int)
    usable = level > 0
    strata, _ = nullmod._strata(run, genes, level, usable)
    pools = {s: np.flatnonzero(usable & (strata == s)) for s in np.unique(strata[usable])}
    lpools = {lv: np.flatnonzero(usable & (level == lv)) for lv in np.unique(level[usable])}
    idx = np.flatnonzero(usable)[:20]
    draws, unmatched = nullmod._draw(np.random.default_rng(0), idx, strata, level, pools, lpools, 50)
    want_hist = np.unique(strata[idx], return_counts=True)
    if unmatched == 0:
        for row in draws:
            got = np.unique(strata[row], return_counts=True)
            assert all(np.array_equal(a, b) for a, b in zip(got, want_hist, strict=True))
    assert all(np.array_equal(np.sort(level[row]), np.sort(level[idx])) for row in draws)
