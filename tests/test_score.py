"""End-to-end `score` against the independent scipy reference (tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from helpers import make_small, reference_scores

from gpc_bench import score


def flat_sets(cohort):
    return {n: g for sets in cohort.gene_sets.values() for n, g in sets.items()}


def check_against_reference(res, truth, pred, sets, constant_prediction="zero", min_genes=10, gene_key=None):
    r_ref, pw_ref, gpc_ref = reference_scores(truth, pred, sets, constant_prediction, min_genes, gene_key)
    gs = res.gene_scores.set_index(["sample_id", "gene"])["pcc"]
    if gene_key is not None:  # map output gene IDs to the reference's keys
        keymap = dict(zip(pred.var_names, gene_key(pred), strict=True))
        gs.index = pd.MultiIndex.from_tuples([(s, keymap[g]) for s, g in gs.index])
    joined = pd.concat([gs.rename("ours"), r_ref.rename("ref")], axis=1)
    assert len(joined) == len(r_ref) == len(gs)
    np.testing.assert_array_equal(np.isnan(joined.ours), np.isnan(joined.ref))
    np.testing.assert_allclose(joined.ours, joined.ref, rtol=0, atol=1e-10)
    pw = res.pathway_wsi_scores.set_index(["pathway", "sample_id"])["score"]
    np.testing.assert_allclose(pw.loc[pw_ref.index].to_numpy(), pw_ref.to_numpy(), atol=1e-10)
    ps = res.pathway_scores.set_index("pathway")["gpc"]
    np.testing.assert_allclose(ps.loc[gpc_ref.index].to_numpy(), gpc_ref.to_numpy(), atol=1e-10)
    return r_ref


def test_matches_reference_separate_files(cohort, cohort_files):
    res = score(cohort_files["noisy"], cohort_files["truth"], pathways=cohort_files["pathways"])
    check_against_reference(res, cohort.truth, cohort.predictions["noisy"], flat_sets(cohort))
    # every (WSI, gene) pair is present; constant genes are really there
    assert res.summary["counts"]["n_truth_constant"] > 0
    assert res.summary["model"] == "pred_noisy"


def test_exclude_mode_and_constant_predictions(cohort, tmp_path):
    pred = cohort.predictions["good"].copy()
    x = pred.X.copy()
    x[:, :25] = 1.5  # constant predictions for 25 genes everywhere
    pred.X = x
    sets = flat_sets(cohort)
    for mode in ("zero", "exclude"):
        res = score(pred, cohort.truth, pathways=_gmt(tmp_path, cohort), constant_prediction=mode)
        check_against_reference(res, cohort.truth, pred, sets, constant_prediction=mode)
        flags = res.gene_scores.flag
        assert (flags == "prediction_constant").sum() == res.summary["counts"]["n_prediction_constant"] > 0
        sub = res.gene_scores[flags == "prediction_constant"].pcc
        assert (sub == 0).all() if mode == "zero" else sub.isna().all()


def _gmt(tmp_path, cohort):
    from gpc_bench.io.gmt import GeneSet, write_gmt

    d = tmp_path / "pw"
    if not d.exists():
        d.mkdir()
        for coll, sets in cohort.gene_sets.items():
            write_gmt(d / f"{coll}.gmt", [GeneSet(coll, n, tuple(g)) for n, g in sets.items()])
    return d


def test_truth_layer_sparse_and_shuffled(cohort, tmp_path):
    """Truth in layers['truth'], CSR predictions, and truth rows in another order (separate file)."""
    pred = cohort.predictions["good"].copy()
    pred.layers["truth"] = sp.csr_matrix(cohort.truth.X)
    pred.X = sp.csr_matrix(pred.X)
    f = tmp_path / "both.h5ad"
    pred.write_h5ad(f)
    res = score(f, pathways=_gmt(tmp_path, cohort), checksum=True)
    check_against_reference(res, cohort.truth, cohort.predictions["good"], flat_sets(cohort))
    assert res.summary["inputs"]["truth"]["file"] == "layers/truth"
    # shuffled truth rows and columns in a separate CSR file: same numbers
    rng = np.random.default_rng(3)
    truth = cohort.truth[rng.permutation(cohort.truth.n_obs)].copy()
    truth = truth[:, rng.permutation(truth.n_vars)].copy()
    truth.X = sp.csr_matrix(truth.X)
    tf = tmp_path / "shuffled_truth.h5ad"
    truth.write_h5ad(tf)
    res2 = score(f, tf, pathways=_gmt(tmp_path, cohort))
    pd.testing.assert_frame_equal(res.pathway_scores, res2.pathway_scores)
    pd.testing.assert_frame_equal(res.gene_scores, res2.gene_scores)


def test_ensembl_ids_against_symbols(tmp_path):
    """Predictions with Ensembl IDs (+ var['gene_symbol']) against truth with symbols."""
    c = make_small(seed=5, ensembl=True)
    truth = c.truth.copy()
    truth.var_names = list(truth.var["gene_symbol"])  # symbols in truth
    truth.var = truth.var.drop(columns="gene_symbol")
    pred = c.predictions["noisy"]
    pred_f, truth_f = tmp_path / "p.h5ad", tmp_path / "t.h5ad"
    pred.write_h5ad(pred_f)
    truth.write_h5ad(truth_f)
    res = score(pred_f, truth_f, pathways=_gmt(tmp_path, c))
    assert res.summary["inputs"]["predictions"]["gene_id_style"] == "ensembl"
    assert res.gene_scores.gene.str.startswith("ENSG").all()
    check_against_reference(
        res, truth, pred, flat_sets(c), gene_key=lambda a: list(a.var.get("gene_symbol", a.var_names))
    )


def test_symbols_come_from_the_truth_when_only_it_has_them(tmp_path):
    """Both files with Ensembl IDs, var['gene_symbol'] only in the truth: pathways match through it;
    and predictions with symbols against an Ensembl truth use the truth's symbol column."""
    c = make_small(seed=7, ensembl=True)
    pred = c.predictions["noisy"].copy()
    pred.var = pred.var.drop(columns="gene_symbol")  # these IDs are not in the shipped table
    res = score(pred, c.truth, pathways=_gmt(tmp_path, c))
    genes = res.pathway_genes
    want = dict(zip(c.truth.var_names, c.truth.var["gene_symbol"], strict=True))
    assert len(genes) and (genes["symbol"] == genes["gene"].map(want)).all()
    assert res.summary["counts"]["n_genes_without_symbol"] == 0
    sym = c.predictions["noisy"].copy()
    sym.var_names = list(sym.var["gene_symbol"])
    sym.var = sym.var.drop(columns="gene_symbol")
    res = score(sym, c.truth, pathways=_gmt(tmp_path, c))
    assert res.summary["counts"]["n_genes_shared"] == c.truth.n_vars
    assert res.summary["inputs"]["truth"]["gene_id_style"] == "ensembl"


def test_ensembl_versions_match_unversioned(cohort, tmp_path):
    c = make_small(seed=6, ensembl=True)
    pred = c.predictions["good"].copy()
    pred.var_names = [f"{g}.7" for g in pred.var_names]
    res = score(pred, c.truth, pathways=_gmt(tmp_path, c))
    assert res.summary["counts"]["n_genes_shared"] == c.truth.n_vars


@pytest.mark.filterwarnings("ignore:Variable names are not unique")
def test_duplicated_genes_keep_first(cohort, tmp_path):
    import anndata as ad

    pred = cohort.predictions["noisy"]
    dup = ad.concat([pred[:, :5], pred], axis=1, merge="same")  # first 5 genes twice, copies first
    dup.X = dup.X.copy()
    dup.X[:, :5] = 0.5 + dup.X[:, :5] * 0  # the first occurrence is constant: it is the one used
    dup.obs = pred.obs.copy()
    res = score(dup, cohort.truth, pathways=_gmt(tmp_path, cohort))
    assert res.summary["counts"]["n_duplicate_gene_ids_predictions"] == 5
    first = res.gene_scores[res.gene_scores.gene.isin(pred.var_names[:5])]
    assert set(first.flag) <= {"prediction_constant", "truth_constant"}
    assert len(res.gene_scores) == cohort.truth.n_vars * 7


def test_hvg_macro_micro(cohort, cohort_files):
    res = score(cohort_files["good"], cohort_files["truth"], pathways=cohort_files["pathways"], hvg=20)
    truth, pred = cohort.truth, cohort.predictions["good"]
    r_ref, _, _ = reference_scores(truth, pred, {})
    types = truth.obs.groupby("sample_id", observed=True)["cancer_type"].first().astype(str)
    wsi_scores = {}
    for ctype in sorted(set(types)):
        sel = truth.obs.cancer_type == ctype
        var = pd.Series(np.var(truth.X[sel.to_numpy()], axis=0, ddof=1), index=truth.var_names)
        var = var[var > 0]
        top = var.sort_values(ascending=False, kind="stable").index[:20]
        for s in types[types == ctype].index:
            wsi_scores[s] = np.nanmean([r_ref[(s, g)] for g in top])
    wsi_scores = pd.Series(wsi_scores)
    got = res.hvg_scores.set_index("sample_id")["pcc"]
    np.testing.assert_allclose(got.loc[wsi_scores.index], wsi_scores, atol=1e-10)
    macro = wsi_scores.groupby(types).mean().mean()
    assert res.headline["hvg_pcc_macro"] == pytest.approx(macro, abs=1e-12)
    assert res.headline["hvg_pcc_micro"] == pytest.approx(wsi_scores.mean(), abs=1e-12)
    assert macro != pytest.approx(wsi_scores.mean())  # uneven WSIs per type: they must differ


def test_hvg_user_lists(cohort, cohort_files, tmp_path):
    import json

    genes = list(cohort.truth.var_names[100:130])
    f = tmp_path / "hvg.json"
    f.write_text(json.dumps({"genes": genes + ["NOT_A_GENE"]}))
    res = score(cohort_files["good"], cohort_files["truth"], pathways=cohort_files["pathways"], hvg=str(f))
    r_ref, _, _ = reference_scores(cohort.truth, cohort.predictions["good"], {})
    for s, v in res.hvg_scores.set_index("sample_id")["pcc"].items():
        assert v == pytest.approx(np.nanmean([r_ref[(s, g)] for g in genes]), abs=1e-10)
    assert res.summary["hvg"]["n_in_panel"]["BRCA"] == 30


def test_variance_levels_and_pathway_variance(cohort, cohort_files):
    res = score(cohort_files["good"], cohort_files["truth"], pathways=cohort_files["pathways"])
    x = np.asarray(cohort.truth.X, dtype=np.float64)
    var = pd.Series(np.var(x, axis=0, ddof=1), index=cohort.truth.var_names)
    gv = res.gene_variance.set_index("gene")
    np.testing.assert_allclose(gv.variance.loc[var.index], var, rtol=1e-10, atol=1e-14)
    pos = var[var > 0]
    expected = pd.qcut(pos, 10, labels=False) + 1
    np.testing.assert_array_equal(gv.variance_level.loc[pos.index].to_numpy(), expected.to_numpy())
    assert gv.variance_level.loc[var[var == 0].index].isna().all()
    thresholds = res.summary["variance_levels"]["thresholds"]
    np.testing.assert_allclose(thresholds, np.quantile(pos, np.arange(1, 10) / 10))
    # a pathway's variance is the mean over its scored genes; its level uses the gene thresholds
    pg = res.pathway_genes[res.pathway_genes.scored]
    ps = res.pathway_scores.set_index("pathway")
    for name, grp in pg.groupby("pathway"):
        v = var.loc[grp.gene].mean()
        assert ps.loc[name, "variance"] == pytest.approx(v, rel=1e-10)
        if ps.loc[name, "status"] == "ok":
            assert ps.loc[name, "variance_level"] == 1 + np.searchsorted(thresholds, v, side="left")


def test_log_variance_bins(cohort_files):
    res = score(
        cohort_files["good"], cohort_files["truth"], pathways=cohort_files["pathways"], variance_bins="log"
    )
    v = res.gene_variance.variance
    lv = np.log10(v[v > 0])
    edges = np.linspace(lv.min(), lv.max(), 11)
    np.testing.assert_allclose(np.log10(res.summary["variance_levels"]["thresholds"]), edges[1:-1])
    counts = res.variance_levels.n_genes.to_numpy()
    hist, _ = np.histogram(lv, bins=edges)
    assert counts.sum() == hist.sum() and abs(counts - hist).max() <= 1  # edges are right-closed


def test_coverage_and_min_genes(cohort, cohort_files):
    res = score(cohort_files["good"], cohort_files["truth"], pathways=cohort_files["pathways"], min_genes=10)
    ps = res.pathway_scores.set_index("pathway")
    r1 = ps.loc["HALLMARK_RANDOM_1"]
    assert r1.set_size == 42 and r1.n_in_panel == 40
    tiny = ps.loc["GOCC_TINY"]
    assert tiny.status == "too_few_genes" and np.isnan(tiny.gpc) and tiny.n_in_panel == 5
    assert res.summary["counts"]["n_pathways_too_few_genes"] == 1
    res1 = score(cohort_files["good"], cohort_files["truth"], pathways=cohort_files["pathways"], min_genes=1)
    assert res1.pathway_scores.set_index("pathway").loc["GOCC_TINY", "status"] == "ok"


def test_gpc_headlines_and_planted_signal(cohort, cohort_files):
    good = score(cohort_files["good"], cohort_files["truth"], pathways=cohort_files["pathways"])
    mean = score(cohort_files["mean"], cohort_files["truth"], pathways=cohort_files["pathways"])
    ps = good.pathway_scores.set_index("pathway")
    signal = ps.loc[cohort.signal_pathways, "gpc"]
    noise = ps.loc[[p for p in ps.index if "RANDOM" in p], "gpc"]
    assert signal.min() > noise.max()
    hall = ps[(ps.collection == "hallmark") & (ps.status == "ok")].gpc.mean()
    assert good.headline["gpc_hallmark"] == pytest.approx(hall)
    # the mean-only control is constant within each WSI: r = 0 everywhere it is defined
    assert mean.headline["gpc_hallmark"] == 0 and mean.headline["hvg_pcc_micro"] == 0


def test_clustering(cohort_files):
    res = score(cohort_files["good"], cohort_files["truth"], pathways=cohort_files["pathways"], cluster="wsi")
    for key in ("ami", "ari", "ami_truth", "ari_truth"):
        assert -1 <= res.headline[key] <= 1
    spot, again = (
        score(
            cohort_files["good"],
            cohort_files["truth"],
            pathways=cohort_files["pathways"],
            cluster="spot",
            cluster_spots=150,
        )
        for _ in range(2)
    )
    assert spot.summary["clustering"]["n_items"] <= 154
    assert spot.headline["ami"] == again.headline["ami"]


def test_outputs_are_byte_identical(cohort_files, tmp_path):
    outs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        score(
            cohort_files["noisy"],
            cohort_files["truth"],
            pathways=cohort_files["pathways"],
            cluster="wsi",
            out=out,
            threads=1 + k,
        )
        outs.append(out)
    files = sorted(p.name for p in outs[0].iterdir())
    assert files == sorted(
        [
            "gene_scores.parquet",
            "wsi_stats",  # the per-WSI statistics every number is evaluated from
            "pathway_wsi_scores.csv",
            "pathway_scores.csv",
            "pathway_genes.csv",
            "pathway_genes_missing.csv",
            "hvg_scores.csv",
            "gene_variance.csv",
            "variance_levels.csv",
            "wsi_metrics.csv",
            "summary.json",
            "run_info.json",
            ".gpc-bench.json",  # the marker: --overwrite replaces only folders that hold it
        ]
    )
    stored = sorted(str(p.relative_to(outs[0])) for p in outs[0].rglob("*") if p.is_file())
    assert {"wsi_stats/gene_stats.parquet", "wsi_stats/meta.json", "wsi_stats/pathways/00.gmt"} <= set(stored)
    for name in stored:
        if name != "run_info.json":
            assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    header = (outs[0] / "pathway_scores.csv").read_text().splitlines()[0]
    assert header == (
        "collection,pathway,set_size,n_in_panel,n_scored,gpc,gpc_sd,n_wsi,variance,variance_level,status,"
        "gpc_depth_baseline,gpc_depth_adjusted,gpc_mse,gpc_r2,gpc_ccc,gpc_rvd,"
        "pac,pac_sd,pac_n_wsi,pac_depth_adjusted,pac_depth_adjusted_sd,pac_depth_adjusted_n_wsi,"
        "activity_moran_truth,activity_moran_truth_sd,activity_moran_truth_n_wsi,"
        "activity_moran_pred,activity_moran_pred_sd,activity_moran_pred_n_wsi"
    )
    back = pd.read_parquet(outs[0] / "gene_scores.parquet")
    assert back.columns.tolist() == [
        "sample_id", "cancer_type", "gene", "pcc", "n_spots", "flag", "r_depth", "r_depth_adjusted",
        "mse", "r2", "ccc", "rvd",
    ]  # fmt: skip
    # categorical in memory, plain strings on disk: the same values either way
    mem = score(cohort_files["noisy"], cohort_files["truth"], pathways=cohort_files["pathways"]).gene_scores
    assert isinstance(mem["gene"].dtype, pd.CategoricalDtype)
    assert all(back[c].dtype == object for c in ("sample_id", "cancer_type", "gene", "flag"))
    pd.testing.assert_frame_equal(
        back, mem.astype({c: object for c in ("sample_id", "cancer_type", "gene", "flag")})
    )


def test_write_parquet_plain_types(tmp_path):
    from gpc_bench._table import Table

    df = pd.DataFrame(
        {
            "a": pd.Categorical(["x", None, "y", "x"], categories=["z", "x", "y"]),  # "z" unused
            "b": np.array(["p", "q", "r", "s"], dtype=object),
            "c": [1.5, np.nan, 3.0, 4.0],
            "d": np.arange(4),
        }
    )
    Table.from_pandas(df).write_parquet(tmp_path / "t.parquet")
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert back["a"].tolist() == ["x", None, "y", "x"] and back["a"].dtype == object
    pd.testing.assert_frame_equal(back.drop(columns="a"), df.drop(columns="a"))
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(tmp_path / "t.parquet")
    assert schema.metadata is None  # no Arrow or pandas schema: every reader sees plain types
    assert [schema.field(c).type for c in "abcd"] == [pa.string(), pa.string(), pa.float64(), pa.int64()]


def test_summary_provenance(cohort_files):
    from gpc_bench.io.checksum import sha256_file

    res = score(cohort_files["good"], cohort_files["truth"], pathways=cohort_files["pathways"], name="m1")
    s = res.summary
    assert s["model"] == "m1"
    assert s["inputs"]["predictions"]["sha256"] == sha256_file(cohort_files["good"])
    assert s["inputs"]["truth"]["sha256"] == sha256_file(cohort_files["truth"])
    assert s["pathways"]["collection_id"].startswith("sha256:")
    assert {src["collection"] for src in s["pathways"]["sources"]} == {"hallmark", "go"}
    assert s["config"]["constant_prediction"] == "zero"
    assert s["counts"]["n_wsi"] == 7 and s["counts"]["n_cancer_types"] == 4
    assert set(s["headline"]["gpc_by_variance_level"]) == {str(i) for i in range(1, 11)}


def test_numba_and_numpy_kernels_give_the_same_scores(cohort_files, monkeypatch):
    from gpc_bench.metrics.pcc import kernel_name

    if kernel_name() != "numba":
        pytest.skip("numba is not installed")
    res = {}
    for k in ("numba", "numpy"):
        monkeypatch.setenv("GPC_BENCH_KERNEL", k)
        res[k] = score(
            cohort_files["good"], cohort_files["truth"], pathways=cohort_files["pathways"], checksum=False
        )
        assert res[k].run_info["kernel"].startswith(k)
    a, b = res["numba"].gene_scores["pcc"].to_numpy(), res["numpy"].gene_scores["pcc"].to_numpy()
    assert np.array_equal(np.isnan(a), np.isnan(b)) and np.nanmax(np.abs(a - b)) < 1e-12
