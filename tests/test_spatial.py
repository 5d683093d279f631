"""Moran's I on the k-nearest-neighbour spot graph, and the spatial per-WSI metrics, against loops."""

from __future__ import annotations

import numpy as np
import pytest
from test_activity import _gmt, _spatial_cohort

from gpc_bench import InputError, score


def _neighbours(xy: np.ndarray, k: int) -> list[np.ndarray]:
    """Brute force: every other spot by (distance rounded to 1e-9 of the extent, index), first k."""
    scale = float(np.ptp(xy, axis=0).max())
    out = []
    for i in range(len(xy)):
        d = np.round(np.sqrt(((xy - xy[i]) ** 2).sum(1)) / scale, 9)
        j = np.array([m for m in np.lexsort((np.arange(len(xy)), d)) if m != i][:k])
        out.append(j)
    return out


def _moran(v: np.ndarray, nb: list[np.ndarray]) -> float:
    """Moran's I with binary row-standardised weights, written out: n/S0 sum_ij w_ij z_i z_j / sum z_i^2."""
    z = v.astype(np.float64)
    z = z - z.mean()
    den = float((z * z).sum())
    if den == 0:
        return np.nan
    num = sum(z[i] * z[j] / len(nb[i]) for i in range(len(z)) for j in nb[i])
    return len(z) / len(z) * num / den  # S0 = n for row-standardised weights


def test_morans_i_matches_a_loop_and_ties_are_deterministic(tmp_path):
    pred, truth = _spatial_cohort(n_side=8)
    res = score(pred, truth, pathways=_gmt(tmp_path, {"S": [f"G{j:02d}" for j in range(20)]}), min_genes=1,
                checksum=False, spatial=True)  # fmt: skip
    m = res.stats.moran
    sid = truth.obs["sample_id"].to_numpy()
    for k, s in enumerate(res.stats.sample_ids):
        sel = sid == s
        nb = _neighbours(
            np.asarray(truth.obsm["spatial"])[sel], 6
        )  # a square grid: 4 at 1, then ties at sqrt 2
        for g in (0, 5, 25, 39):
            assert m[k, 0, g] == pytest.approx(_moran(np.asarray(truth.X)[sel, g], nb), abs=1e-9)
            assert m[k, 1, g] == pytest.approx(_moran(np.asarray(pred.X)[sel, g], nb), abs=1e-9)
    again = score(pred, truth, pathways=_gmt(tmp_path, {"S": [f"G{j:02d}" for j in range(20)]}), min_genes=1,
                  checksum=False, spatial=True)  # fmt: skip
    assert np.array_equal(again.stats.moran, m, equal_nan=True)


def test_smooth_predictions_match_and_shuffled_ones_lose_their_pattern(tmp_path):
    gmt = _gmt(tmp_path, {"S": [f"G{j:02d}" for j in range(20)]})
    pred, truth = _spatial_cohort()
    res = score(pred, truth, pathways=gmt, min_genes=1, checksum=False, spatial=True)
    m = res.stats.moran
    assert (m[:, 0, :20] > 0.5).all()  # the planted genes are spatially variable, measured ...
    assert m[:, 1, :20].mean() > 0.1 > np.abs(m[:, 1, 20:]).mean()  # ... and predicted (with noise)
    w = res.table("wsi_metrics").pivot(index="sample_id", columns="metric", values="value")
    assert (w["spatial_recall"] > 0.8).all()
    shuffled, truth = _spatial_cohort(shuffle=True)
    res2 = score(shuffled, truth, pathways=gmt, min_genes=1, checksum=False, spatial=True)
    m2 = res2.stats.moran
    assert np.abs(m2[:, 1, :20]).mean() < 0.1  # predicted I near 0 at shuffled positions
    w2 = res2.table("wsi_metrics").pivot(index="sample_id", columns="metric", values="value")
    assert (w2["moran_abs_diff"] > w["moran_abs_diff"] + 0.05).all()
    assert (w2["spatial_recall"] < w["spatial_recall"]).all()
    # svg_pcc: the mean r over the WSI's top-50 genes by measured I (here all 40), as a loop
    for k, s in enumerate(res.stats.sample_ids):
        order = np.lexsort((np.arange(40), -m[k, 0]))[:50]
        assert w.loc[s, "svg_pcc"] == pytest.approx(np.nanmean(res.stats.r[k, order]), abs=1e-12)
        ok = np.isfinite(m[k, 0]) & np.isfinite(m[k, 1])
        assert w.loc[s, "spatial_recall"] == pytest.approx(
            np.corrcoef(m[k, 0, ok], m[k, 1, ok])[0, 1], abs=1e-12
        )
    assert res.headline["spatial_recall_macro"] is not None


def test_spatial_needs_coordinates_and_is_otherwise_not_computable(tmp_path, cohort_files):
    pred, truth = _spatial_cohort()
    del truth.obsm["spatial"]
    with pytest.raises(InputError, match="obsm\\['spatial'\\]"):
        score(pred, truth, pathways=_gmt(tmp_path, {"S": ["G00"]}), min_genes=1, checksum=False, spatial=True)
    res = score(
        cohort_files["good"], cohort_files["truth"], pathways=cohort_files["pathways"], checksum=False
    )
    assert "spatial_recall" in res.summary["not_computable"] and res.headline["spatial_recall_macro"] is None


def test_morans_i_of_the_activity_maps(tmp_path):
    """--activity --spatial: Moran's I of the measured and predicted pathway activity maps, against the
    loop of the activity and Moran's formula; high for a planted smooth pathway, near 0 when the
    predictions sit at shuffled positions."""
    from test_activity import _activity_reference

    sets = {"SMOOTH": [f"G{j:02d}" for j in range(20)], "NOISE": [f"G{j:02d}" for j in range(20, 40)]}
    gmt = _gmt(tmp_path, sets)
    pred, truth = _spatial_cohort(n_side=8)
    res = score(pred, truth, pathways=gmt, min_genes=1, checksum=False, spatial=True, activity=True)
    pw = res.pathway_wsi_scores.set_index(["pathway", "sample_id"])
    sid = truth.obs["sample_id"].to_numpy()
    for s in ("A", "B"):
        sel = sid == s
        nb = _neighbours(np.asarray(truth.obsm["spatial"])[sel], 6)
        for name, genes in sets.items():
            idx = [int(g[1:]) for g in genes]
            want_t = _moran(_activity_reference(np.asarray(truth.X)[sel], idx), nb)
            want_p = _moran(_activity_reference(np.asarray(pred.X)[sel], idx), nb)
            assert pw.loc[(name, s), "activity_moran_truth"] == pytest.approx(want_t, abs=1e-9)
            assert pw.loc[(name, s), "activity_moran_pred"] == pytest.approx(want_p, abs=1e-9)
    ps = res.pathway_scores.set_index("pathway")
    assert ps.loc["SMOOTH", "activity_moran_truth"] > 0.5 and ps.loc["SMOOTH", "activity_moran_pred"] > 0.5
    shuffled, truth = _spatial_cohort(n_side=8, shuffle=True)
    res = score(shuffled, truth, pathways=gmt, min_genes=1, checksum=False, spatial=True, activity=True)
    assert abs(res.pathway_scores.set_index("pathway").loc["SMOOTH", "activity_moran_pred"]) < 0.2


def test_the_activity_figure_titles_the_runs_pac_and_morans_i(tmp_path):
    from gpc_bench.plot.spatial import map_agreement

    sets = {"SMOOTH": [f"G{j:02d}" for j in range(20)]}
    pred, truth = _spatial_cohort(n_side=8)
    res = score(
        pred, truth, pathways=_gmt(tmp_path, sets), min_genes=1, checksum=False, spatial=True, activity=True
    )
    row = res.pathway_wsi_scores.set_index(["pathway", "sample_id"]).loc[("SMOOTH", "A")]
    sel = (truth.obs["sample_id"] == "A").to_numpy()
    pac, mt, mp = map_agreement(np.asarray(pred.X)[sel][:, :20], np.asarray(truth.X)[sel][:, :20],
                                np.asarray(truth.obsm["spatial"])[sel])  # fmt: skip
    assert pac == pytest.approx(row["pac"], abs=1e-9)
    assert mt == pytest.approx(row["activity_moran_truth"], abs=1e-9)
    assert mp == pytest.approx(row["activity_moran_pred"], abs=1e-9)


@pytest.mark.filterwarnings("ignore:1 variables were constant")
def test_morans_i_matches_scanpy_on_the_same_graph(tmp_path):
    """scanpy's Moran's I (``scanpy.metrics.morans_i``) on the graph score builds gives the same I."""
    sc = pytest.importorskip("scanpy")
    from gpc_bench.metrics.spatial import knn_graph, morans_i

    pred, truth = _spatial_cohort(n_side=9)
    sel = (truth.obs["sample_id"] == "A").to_numpy()
    x = np.asarray(truth.X)[sel].astype(np.float64)
    x[:, 3] = 1.0  # a constant gene: NaN in both
    g = knn_graph(np.asarray(truth.obsm["spatial"])[sel])
    ours = morans_i(x, g)
    theirs = np.asarray(sc.metrics.morans_i(g, x.T), dtype=np.float64)
    assert np.isnan(ours[3]) and np.isnan(theirs[3])
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12, equal_nan=True)


def test_predictions_in_another_gene_order_give_the_same_morans_i(tmp_path):
    """The WSI copies take a slice when the genes are in file order, a gather otherwise: same I."""
    gmt = _gmt(tmp_path, {"S": [f"G{j:02d}" for j in range(20)]})
    pred, truth = _spatial_cohort(n_side=7)
    same = score(pred, truth, pathways=gmt, min_genes=1, checksum=False, spatial=True, domains="kmeans")
    order = np.random.default_rng(0).permutation(pred.n_vars)
    other = score(pred[:, order].copy(), truth, pathways=gmt, min_genes=1, checksum=False, spatial=True,
                  domains="kmeans")  # fmt: skip
    back = np.argsort(order)  # the panel follows the predictions' gene order
    assert list(other.stats.genes[back]) == list(same.stats.genes)
    np.testing.assert_allclose(other.stats.moran[:, :, back], same.stats.moran, rtol=0, atol=1e-12)
    # the domains do not depend on the column order (the same partitions, up to the PCA's rounding)
    np.testing.assert_allclose(other.stats.domains, same.stats.domains, atol=1e-9)
