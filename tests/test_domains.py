"""Tissue domains: per-WSI clusters of measured and predicted spots, scored with sklearn.metrics."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from test_activity import _gmt

from gpc_bench import InputError, score
from gpc_bench.config import ScoreConfig
from gpc_bench.metrics import domains as dm

REGIONS = ("tumour", "stroma", "immune")


def _domain_cohort(seed=0, n_side=14, n_genes=60, shuffle=False, noise=0.6):
    """Three WSIs on a grid, each cut into three bands (planted domains) with their own genes up;
    the prediction is the truth plus noise (``shuffle``: at random positions within the WSI)."""
    import anndata as ad

    rng = np.random.default_rng(seed)
    xs, ps, obs, coords = [], [], [], []
    for w in ("A", "B", "C"):
        yy, xx = np.meshgrid(np.arange(n_side), np.arange(n_side), indexing="ij")
        region = np.minimum(xx.ravel() * 3 // n_side, 2)
        n = len(region)
        x = rng.normal(1.0, 0.5, (n, n_genes))
        for r in range(3):
            x[region == r, r * 15 : (r + 1) * 15] += 2.0
        y = x + rng.normal(0, noise, x.shape)
        if shuffle:
            y = y[rng.permutation(n)]
        labels = np.array([REGIONS[r] for r in region], dtype=object)
        labels[rng.choice(n, 5, replace=False)] = None  # unannotated spots
        xs.append(np.clip(x, 0, None))
        ps.append(np.clip(y, 0, None))
        names = [f"{w}{a}x{b}" for a, b in zip(xx.ravel(), yy.ravel(), strict=True)]
        obs.append(pd.DataFrame({"sample_id": w, "cancer_type": "T", "region": labels}, index=names))
        coords.append(np.column_stack([xx.ravel(), yy.ravel()]).astype(float))
    var = pd.DataFrame(index=[f"G{j:02d}" for j in range(n_genes)])
    o = pd.concat(obs)
    o["region"] = o["region"].astype("category")
    truth = ad.AnnData(np.concatenate(xs).astype(np.float32), obs=o, var=var)
    truth.obsm["spatial"] = np.concatenate(coords)
    pred = ad.AnnData(np.concatenate(ps).astype(np.float32), obs=o.drop(columns="region"), var=var)
    return pred, truth


def _sets(tmp_path):
    return _gmt(
        tmp_path, {"UP0": [f"G{j:02d}" for j in range(15)], "REST": [f"G{j:02d}" for j in range(30, 60)]}
    )


def _reference(x: np.ndarray, y: np.ndarray, labels, k: int, seed: int) -> dict:
    """The domains written out step by step: genes by variance, z-scores, PCA, k-means, sklearn."""
    from sklearn import metrics
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    var = x.astype(np.float64).var(axis=0)
    top = sorted(sorted(np.flatnonzero(var > 0), key=lambda j: (-var[j], j))[: dm.N_GENES])

    def domains(a):
        a = a[:, top].astype(np.float64)
        sd = a.std(axis=0)
        z = (a[:, sd > 0] - a[:, sd > 0].mean(axis=0)) / sd[sd > 0]
        pcs = PCA(
            n_components=min(dm.N_PCS, *z.shape), svd_solver="randomized", random_state=seed
        ).fit_transform(z)
        return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(pcs)

    dx, dy = domains(x), domains(y)
    known = np.array([v is not None and v == v for v in labels])
    ref = np.asarray(labels, dtype=object)[known].astype(str)
    scores = {
        "ari": metrics.adjusted_rand_score, "ami": metrics.adjusted_mutual_info_score,
        "nmi": metrics.normalized_mutual_info_score, "homogeneity": metrics.homogeneity_score,
        "completeness": metrics.completeness_score,
    }  # fmt: skip
    out = {f"domain_{s}": f(dx, dy) for s, f in scores.items()}
    out |= {f"annot_pred_{s}": f(ref, dy[known]) for s, f in scores.items()}
    out |= {f"annot_truth_{s}": f(ref, dx[known]) for s, f in scores.items()}
    return out


def test_domain_metrics_match_a_step_by_step_sklearn_computation(tmp_path):
    pred, truth = _domain_cohort()
    res = score(pred, truth, pathways=_sets(tmp_path), min_genes=1, checksum=False, domains="kmeans",
                domain_clusters=3, domain_key="region")  # fmt: skip
    assert res.summary["config"]["domains"] == "kmeans"
    w = res.table("wsi_metrics").pivot(index="sample_id", columns="metric", values="value")
    sid = truth.obs["sample_id"].to_numpy()
    for s in ("A", "B", "C"):
        sel = sid == s
        ref = _reference(
            np.asarray(truth.X)[sel], np.asarray(pred.X)[sel], truth.obs["region"].to_numpy()[sel], 3, 0
        )
        for name, value in ref.items():
            assert w.loc[s, name] == pytest.approx(value, abs=1e-12), (s, name)
    # planted bands: measured domains find them, the noisy prediction too
    assert (w["annot_truth_ari"] > 0.9).all() and (w["domain_ari"] > 0.8).all()
    stats = res.stats.domains
    assert (stats[:, dm.DOMAINS.index("domains_annotation_n")] == 3).all()
    assert res.headline["domain_ari_macro"] == pytest.approx(w["domain_ari"].mean())
    again = score(pred, truth, pathways=_sets(tmp_path), min_genes=1, checksum=False, domains="kmeans",
                  domain_clusters=3, domain_key="region")  # fmt: skip
    assert np.array_equal(again.stats.domains, stats, equal_nan=True)


def test_shuffled_predictions_lose_the_domains(tmp_path):
    gmt = _sets(tmp_path)
    kw = dict(
        pathways=gmt, min_genes=1, checksum=False, domains="kmeans", domain_clusters=3, domain_key="region"
    )
    good = score(*_domain_cohort(), **kw).table("wsi_metrics")
    bad = score(*_domain_cohort(shuffle=True), **kw).table("wsi_metrics")
    g = good.pivot(index="sample_id", columns="metric", values="value")
    b = bad.pivot(index="sample_id", columns="metric", values="value")
    assert (b["domain_ari"].abs() < 0.1).all() and (b["annot_pred_ari"].abs() < 0.1).all()
    assert (g["annot_pred_ari"] > 0.8).all()
    # the measured ceiling does not depend on the prediction
    assert np.allclose(g["annot_truth_ari"], b["annot_truth_ari"])


def test_a_constant_prediction_is_one_domain(tmp_path):
    pred, truth = _domain_cohort()
    pred.X = np.ones_like(pred.X)
    res = score(pred, truth, pathways=_sets(tmp_path), min_genes=1, checksum=False, domains="kmeans",
                domain_clusters=3)  # fmt: skip
    d = res.stats.domains
    assert (d[:, dm.DOMAINS.index("domains_pred_n")] == 1).all()
    assert np.allclose(d[:, dm.DOMAINS.index("domain_ari")], 0.0)
    assert np.allclose(d[:, dm.DOMAINS.index("domain_homogeneity")], 0.0)
    # no annotation asked for: those metrics are not computable, and say how to get them
    nc = res.summary["not_computable"]
    assert "annot_pred_ari" in nc and "--domain-key" in nc["annot_pred_ari"]


@pytest.mark.skipif(dm.resolve_method("auto") != "leiden", reason="leidenalg and igraph are not installed")
def test_leiden_finds_the_planted_domains(tmp_path):
    pred, truth = _domain_cohort()
    res = score(pred, truth, pathways=_sets(tmp_path), min_genes=1, checksum=False, domain_key="region")
    assert res.summary["config"]["domains"] == "leiden"  # auto, recorded as resolved
    w = res.table("wsi_metrics").pivot(index="sample_id", columns="metric", values="value")
    assert (w["annot_truth_nmi"] > 0.6).all() and (w["domain_nmi"] > 0.5).all()
    again = score(pred, truth, pathways=_sets(tmp_path), min_genes=1, checksum=False, domain_key="region")
    assert np.array_equal(again.stats.domains, res.stats.domains, equal_nan=True)


def test_without_leidenalg_auto_means_kmeans(monkeypatch):
    monkeypatch.setitem(sys.modules, "leidenalg", None)  # import fails as if not installed
    assert dm.resolve_method("auto") == "kmeans"
    assert ScoreConfig(domains="auto").domains == "kmeans"
    assert ScoreConfig(domain_key="region").domains == "kmeans"


def test_domain_options_are_checked(tmp_path):
    pred, truth = _domain_cohort()
    with pytest.raises(InputError, match="no obs column 'pathology'"):
        score(pred, truth, pathways=_sets(tmp_path), min_genes=1, checksum=False, domain_key="pathology")
    with pytest.raises(InputError, match="domains must be"):
        ScoreConfig(domains="louvain")
    with pytest.raises(InputError, match="domain_clusters"):
        ScoreConfig(domains="kmeans", domain_clusters=1)


def test_domains_survive_the_run_folder_and_intersect_drops_them(tmp_path):
    from gpc_bench.stats import read_stats

    pred, truth = _domain_cohort()
    res = score(pred, truth, pathways=_sets(tmp_path), min_genes=1, checksum=False, domains="kmeans",
                domain_clusters=3, out=tmp_path / "run")  # fmt: skip
    back = read_stats(tmp_path / "run")
    assert np.array_equal(back.domains, res.stats.domains, equal_nan=True)
    assert back.take(genes=np.arange(10)).domains is None  # other genes, other domains
    assert back.take(wsi=np.array([1])).domains.shape == (1, len(dm.DOMAINS))


def test_runs_that_cluster_differently_are_not_compared(tmp_path):
    from gpc_bench.compare import leaderboard

    pred, truth = _domain_cohort()
    kw = dict(pathways=_sets(tmp_path), min_genes=1, checksum=False)
    score(pred, truth, name="k3", out=tmp_path / "k3", domains="kmeans", domain_clusters=3, **kw)
    score(pred, truth, name="k5", out=tmp_path / "k5", domains="kmeans", domain_clusters=5, **kw)
    score(pred, truth, name="plain", out=tmp_path / "plain", **kw)
    with pytest.raises(InputError, match=r"computed domain_clusters differently \(k3: 3, k5: 5\)"):
        leaderboard([tmp_path / "k3", tmp_path / "k5"], n_boot=0)
    lb = leaderboard([tmp_path / "k3", tmp_path / "plain"], n_boot=0)  # one without domains: comparable
    wide = lb.table.set_index("model")
    assert np.isfinite(wide.loc["k3", "domain_ari_macro"]) and np.isnan(wide.loc["plain", "domain_ari_macro"])


def test_her2st_domains_against_the_pathologist_labels(shared_data):
    """Two labelled her2st sections: the measured domains find the pathologist regions beyond
    chance, a spatially smoothed truth keeps them, a constant prediction has none."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "her2st_domains.py"
    spec = importlib.util.spec_from_file_location("her2st_domains", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.run(shared_data, sections=("B1", "H1"), domains="kmeans", k=5)
    smooth, const = res["smoothed"]["per_section"], res["constant"]["per_section"]
    for s in ("B1", "H1"):
        assert smooth[s]["annot_truth_ari"] > 0.1 and smooth[s]["annot_truth_nmi"] > 0.15
        assert smooth[s]["annot_pred_ari"] > 0.1 and smooth[s]["domain_ari"] > 0.2
        assert const[s]["annot_pred_ari"] == 0 and const[s]["domain_ari"] == 0
        assert const[s]["annot_truth_ari"] == smooth[s]["annot_truth_ari"]  # the ceiling is the truth's


def test_the_cli_takes_the_extras_with_and_without_a_value(tmp_path):
    import json

    from click.testing import CliRunner

    from gpc_bench.cli import main

    pred, truth = _domain_cohort()
    pred.write_h5ad(tmp_path / "pred.h5ad")
    truth.write_h5ad(tmp_path / "truth.h5ad")
    gmt = _sets(tmp_path)
    base = ["-q", "score", str(tmp_path / "pred.h5ad"), "--truth", str(tmp_path / "truth.h5ad"),
            "--pathways", str(gmt), "--min-genes", "1", "--no-checksum"]  # fmt: skip
    # a bare --activity (mean-z) followed by another option; --domains with a method
    res = CliRunner().invoke(main, [*base, "--activity", "--domains", "kmeans", "--domain-clusters", "3",
                                    "--domain-key", "region", "--out", str(tmp_path / "a")])  # fmt: skip
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "a" / "summary.json").read_text())["config"]
    assert (cfg["activity"], cfg["domains"], cfg["domain_clusters"], cfg["domain_key"]) == (
        "mean-z",
        "kmeans",
        3,
        "region",
    )
    res = CliRunner().invoke(main, [*base, "--domains", "louvain", "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "louvain" in res.output


def test_leiden_without_leidenalg_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "leidenalg", None)
    pred, truth = _domain_cohort()
    with pytest.raises(InputError, match="needs leidenalg") as err:
        score(pred, truth, pathways=_sets(tmp_path), min_genes=1, checksum=False, domains="leiden")
    assert "gpc-bench[domains]" in err.value.hint


def test_extras_not_asked_for_are_listed_not_warned_about(tmp_path):
    pred, truth = _domain_cohort()
    res = score(pred, truth, pathways=_sets(tmp_path), min_genes=1, checksum=False)
    nc, warned = res.summary["not_computable"], " ".join(res.summary["warnings"])
    assert {"domain_ari", "annot_pred_ari", "spatial_recall", "pac"} <= set(nc)
    assert "domain_ari" not in warned and "spatial_recall" not in warned and "pac" not in warned
    res = score(pred, truth, pathways=_sets(tmp_path), min_genes=1, checksum=False, domains="kmeans",
                domain_clusters=3)  # fmt: skip
    assert "annot_pred_ari" in res.summary["not_computable"]
    assert not any("not computable" in w for w in res.summary["warnings"])
