"""Adapters: native layouts built here convert to the canonical predictions, and score the same."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from gpc_bench import InputError, score
from gpc_bench.baselines.adapters import formats
from gpc_bench.cli import main


@pytest.fixture(scope="module")
def canon(cohort, cohort_files):
    """Canonical predictions of two WSIs, their truth, and the scores of the canonical file."""
    pred = cohort.predictions["noisy"]
    keep = pred.obs["sample_id"].isin(["WSI01_LUAD", "WSI02_COAD"]).to_numpy()
    p, t = pred[keep].copy(), cohort.truth[keep].copy()
    ref = score(p, t, pathways=cohort_files["pathways"], checksum=False)
    return p, t, ref


#: what correlation tables cannot give even with the truth: all that needs the predictions themselves
NEED_PREDICTIONS = {"clustering", "depth_adjusted", "mse", "r2", "ccc", "rvd", "pac", "pac_depth_adjusted",
                    "spatial_recall", "moran_abs_diff", "svg_pcc", "activity_moran_truth",
                    "activity_moran_pred"} | {
    f"{p}_{s}" for p in ("domain", "annot_pred", "annot_truth")
    for s in ("ari", "ami", "nmi", "homogeneity", "completeness")
}  # fmt: skip


def _same_scores(a, b):
    pd.testing.assert_frame_equal(a.pathway_scores, b.pathway_scores, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(a.gene_scores["pcc"], b.gene_scores["pcc"], atol=1e-6)


def test_histoprism_csv(canon, cohort_files, tmp_path):
    p, t, ref = canon
    df = pd.DataFrame(p.X.copy(), columns=list(p.var_names))  # a copy: the NaN below must not reach p
    df.insert(0, "sample_id", p.obs["sample_id"].astype(str).to_numpy())
    df.to_csv(tmp_path / "predicted_genes.csv", index=False)
    t.write_h5ad(tmp_path / "truth.h5ad")
    out = tmp_path / "p.h5ad"
    res = CliRunner().invoke(main, ["convert", str(tmp_path / "predicted_genes.csv"), "--from", "histoprism",
                                    "--truth", str(tmp_path / "truth.h5ad"), "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "p.h5ad.conversion.json").read_text())
    assert report["n_spots"] == p.n_obs and report["n_wsi"] == 2 and len(report["source_sha256"]) == 64
    assert "truth (file order)" in report["spot_order"]
    _same_scores(score(out, tmp_path / "truth.h5ad", pathways=cohort_files["pathways"], checksum=False), ref)
    with pytest.raises(InputError, match="give --embeddings DIR"):
        formats.histoprism(tmp_path / "predicted_genes.csv")
    short = t[t.obs["sample_id"] != "WSI02_COAD"].copy()
    with pytest.raises(InputError, match="WSI 'WSI02_COAD': the predictions have .* spots but the truth"):
        formats.histoprism(tmp_path / "predicted_genes.csv", truth=short)
    df.iloc[3, 5] = np.nan
    df.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InputError, match="NaN or infinite"):
        formats.histoprism(tmp_path / "bad.csv", truth=t)


def test_stem_interleaved_draws(canon, cohort_files, tmp_path):
    torch = pytest.importorskip("torch", reason="STEM writes torch tensors: needs the [model] extra")

    p, t, _ = canon
    one = p[p.obs["sample_id"] == "WSI01_LUAD"].copy()
    truth1 = t[t.obs["sample_id"] == "WSI01_LUAD"].copy()
    k = 3
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.1, (one.n_obs, k, one.n_vars))
    noise -= noise.mean(1, keepdims=True)  # draws centred on the prediction: their mean is it
    draws = one.X[:, None, :].astype(np.float64) + noise
    torch.save(
        torch.from_numpy(draws.reshape(one.n_obs * k, 1, one.n_vars).astype(np.float32)), tmp_path / "gen.pt"
    )
    (tmp_path / "genes.txt").write_text("\n".join(one.var_names) + "\n")
    truth1.write_h5ad(tmp_path / "WSI01_LUAD.h5ad")
    conv = formats.stem(
        tmp_path / "gen.pt", slide=tmp_path / "WSI01_LUAD.h5ad", genes=tmp_path / "genes.txt", n_draws=k
    )
    np.testing.assert_allclose(conv.adata.X, one.X, atol=1e-5)
    np.testing.assert_allclose(conv.adata.layers["pred_sd"], draws.std(1), atol=1e-5)
    assert list(conv.adata.obs_names) == list(truth1.obs_names)
    with pytest.raises(InputError, match="not a multiple of --n-draws 4"):
        formats.stem(
            tmp_path / "gen.pt", slide=tmp_path / "WSI01_LUAD.h5ad", genes=tmp_path / "genes.txt", n_draws=4
        )
    (tmp_path / "g2.txt").write_text("A\nB\n")
    with pytest.raises(InputError, match="lists 2"):
        formats.stem(
            tmp_path / "gen.pt", slide=tmp_path / "WSI01_LUAD.h5ad", genes=tmp_path / "g2.txt", n_draws=k
        )


@pytest.mark.parametrize("suffix", [".npz", ".pkl", ".pkl4", ".pkl5", ".pth", ".pt-numpy"])
def test_stflow_dict(canon, cohort_files, tmp_path, suffix):
    if suffix in (".pth", ".pt-numpy"):
        pytest.importorskip("torch", reason=".pth files need the [model] extra")

    p, t, ref = canon
    d = {"preds_all": np.asarray(p.X), "targets_all": np.asarray(t.X)}
    path = tmp_path / f"eval{suffix}"
    if suffix == ".npz":
        np.savez(path, **d)
    elif suffix == ".pkl":
        path.write_bytes(pickle.dumps(d))
    elif suffix in (".pkl4", ".pkl5"):
        # HEST-Benchmark's inference_dump.pkl: save_pkl = pickle.dump of {preds_all: the regressor's
        # float64 predict(), targets_all: the DataFrame's .values}, under the protocol of its Python
        path = tmp_path / "inference_dump.pkl"
        with open(path, "wb") as fh:
            dump = {
                "preds_all": d["preds_all"].astype(np.float64),
                "targets_all": pd.DataFrame(d["targets_all"]).values,
            }
            pickle.dump(dump, fh, protocol=int(suffix[-1]))
    elif suffix == ".pt-numpy":  # torch.save of the numpy dict itself
        import torch

        path = tmp_path / "eval.pt"
        torch.save(d, path)
    else:
        import torch

        torch.save({k: torch.from_numpy(v) for k, v in d.items()}, path)
    counts = p.obs["sample_id"].astype(str).value_counts(sort=False)
    pd.DataFrame({"sample_id": counts.index, "n_spots": counts.to_numpy()}).to_csv(
        tmp_path / "s.csv", index=False
    )
    (tmp_path / "var_50genes.json").write_text(json.dumps({"genes": list(p.var_names)}))
    conv = formats.stflow(path, samples=tmp_path / "s.csv", genes=tmp_path / "var_50genes.json")
    assert "loader order only" in conv.report["spot_order"] and conv.report["truth"] == "layers['truth']"
    _same_scores(score(conv.adata, pathways=cohort_files["pathways"], checksum=False), ref)
    pd.DataFrame({"sample_id": counts.index, "n_spots": counts.to_numpy() + 1}).to_csv(
        tmp_path / "bad.csv", index=False
    )
    with pytest.raises(InputError, match="add up to"):
        formats.stflow(path, samples=tmp_path / "bad.csv", genes=tmp_path / "var_50genes.json")


def test_stflow_refuses_a_pickle_that_runs_code(tmp_path):
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    (tmp_path / "e.pkl").write_bytes(pickle.dumps({"preds_all": Evil()}))
    (tmp_path / "s.csv").write_text("sample_id,n_spots\nA,1\n")
    (tmp_path / "g.json").write_text('{"genes": ["G"]}')
    with pytest.raises(InputError, match="refusing to load"):
        formats.stflow(tmp_path / "e.pkl", samples=tmp_path / "s.csv", genes=tmp_path / "g.json")


def test_stpath_h5ad_folder_with_embedding_barcodes(canon, cohort_files, tmp_path):
    import anndata as ad
    import h5py

    p, t, ref = canon
    (tmp_path / "pred").mkdir()
    (tmp_path / "emb").mkdir()
    rng = np.random.default_rng(2)
    for s in ("WSI01_LUAD", "WSI02_COAD"):
        sub = p[p.obs["sample_id"] == s]
        order = rng.permutation(sub.n_obs)  # the embedding file lists the spots in its own order
        a = ad.AnnData(np.asarray(sub.X)[order], var=pd.DataFrame(index=sub.var_names))
        a.obsm["coordinates"] = rng.random((sub.n_obs, 2))
        a.write_h5ad(tmp_path / "pred" / f"pred_{s}.h5ad")
        with h5py.File(tmp_path / "emb" / f"{s}.h5", "w") as f:
            f["embeddings"] = rng.random((sub.n_obs, 4), dtype=np.float32)
            f["barcodes"] = np.array([b.encode() for b in sub.obs_names[order]])[:, None]
    conv = formats.stpath_h5ad(tmp_path / "pred", embeddings=tmp_path / "emb")
    assert conv.report["files"] == ["pred_WSI01_LUAD.h5ad", "pred_WSI02_COAD.h5ad"]
    assert "embeddings" in conv.report["spot_order"]
    _same_scores(score(conv.adata, t, pathways=cohort_files["pathways"], checksum=False), ref)
    with pytest.raises(InputError, match="matches 'prediction_"):
        formats.stpath_h5ad(
            tmp_path / "pred", pattern="prediction_{sample_id}.h5ad", embeddings=tmp_path / "emb"
        )
    (tmp_path / "emb" / "WSI02_COAD.h5").unlink()
    with pytest.raises(InputError, match="no embeddings for WSI 'WSI02_COAD'"):
        formats.stpath_h5ad(tmp_path / "pred", embeddings=tmp_path / "emb")


def test_score_from_a_native_file_in_one_step(canon, cohort_files, tmp_path):
    p, t, ref = canon
    df = pd.DataFrame(p.X.copy(), columns=list(p.var_names))
    df.insert(0, "sample_id", p.obs["sample_id"].astype(str).to_numpy())
    df.to_csv(tmp_path / "predicted_genes.csv", index=False)
    t.write_h5ad(tmp_path / "truth.h5ad")
    out = tmp_path / "run"
    args = ["-q", "score", str(tmp_path / "predicted_genes.csv"), "--from", "histoprism", "--truth",
            str(tmp_path / "truth.h5ad"), "--pathways", str(cohort_files["pathways"]), "--out", str(out),
            "--no-checksum"]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "predicted_genes" and summary["conversion"]["format"] == "histoprism"
    got = pd.read_csv(out / "pathway_scores.csv")
    pd.testing.assert_frame_equal(got.reset_index(drop=True), pd.read_csv(_write(ref, tmp_path / "ref")),
                                  rtol=1e-6, atol=1e-7)  # fmt: skip
    bad = CliRunner().invoke(main, ["score", str(tmp_path / "predicted_genes.csv"), "--from", "stem", "--out",
                                    str(tmp_path / "x")])  # fmt: skip
    assert bad.exit_code == 2 and "--from stem needs --slide, --genes, --n-draws" in bad.output


def _write(res, folder):
    res.write(folder)
    return folder / "pathway_scores.csv"


def test_gene_pcc_tables_in_every_published_layout(tmp_path):
    from gpc_bench.baselines.adapters.gene_pcc import read_gene_pcc

    d = tmp_path / "pcc"
    d.mkdir()
    # HistoPrism writes json.dump output: bare NaN tokens, and sometimes null
    (d / "TENX95_gene_pcc.json").write_text(
        '{"pearson_corr": {"A": 0.5, "B": NaN, "C": null}, "average_pcc": 0.5}'
    )
    (d / "all_samples_gene_pcc.json").write_text('{"pearson_corr": {"A": 1.0}}')  # a summary: skipped
    (d / "NCBI684_results.json").write_text(
        json.dumps({"pearson_corrs": [{"name": "A", "pearson_corr": -0.25}]})
    )
    pd.DataFrame({"sample_id": ["S9"], "gene": ["B"], "pcc": [0.125]}).to_csv(d / "more.csv", index=False)
    table, info = read_gene_pcc(d)
    got = table.set_index(["sample_id", "gene"])["pcc"]
    assert got[("TENX95", "A")] == 0.5 and np.isnan(got[("TENX95", "B")]) and np.isnan(got[("TENX95", "C")])
    assert got[("NCBI684", "A")] == -0.25 and got[("S9", "B")] == 0.125
    assert info["files"] == {
        "NCBI684_results.json": "hest",
        "TENX95_gene_pcc.json": "histoprism",
        "more.csv": "csv",
    }
    (d / "x_results.json").write_text('{"scores": [1, 2]}')
    with pytest.raises(InputError, match="not a known gene-correlation layout"):
        read_gene_pcc(d)
    (d / "x_results.json").unlink()
    (d / "TENX95_results.json").write_text(
        json.dumps({"pearson_corrs": [{"name": "A", "pearson_corr": 0.1}]})
    )
    with pytest.raises(InputError, match="WSI 'TENX95' appears in"):
        read_gene_pcc(d)
    (d / "TENX95_results.json").write_text(
        json.dumps({"pearson_corrs": [{"name": "A", "pearson_corrs": [0.1], "mean": 0.1}]})
    )
    with pytest.raises(InputError, match="k-fold summary"):
        read_gene_pcc(d / "TENX95_results.json")
    (d / "TENX95_results.json").write_text('{"pearson_corr": {"A": "high"}}')
    with pytest.raises(InputError, match="'high' is not a correlation"):
        read_gene_pcc(d / "TENX95_results.json")


def test_score_from_gene_correlations_matches_the_full_run(cohort, cohort_files, tmp_path):
    """GPC, per-WSI pathway scores, levels and HVG PCC from the r alone equal the full run's."""
    lists = tmp_path / "hvg"
    lists.mkdir()
    rng = np.random.default_rng(5)
    for c in set(cohort.truth.obs["cancer_type"]):
        (lists / f"{c}.json").write_text(json.dumps({"genes": list(rng.choice(cohort.truth.var_names, 30))}))
    kw = dict(pathways=cohort_files["pathways"], hvg=str(lists), checksum=False)
    full = score(cohort_files["noisy"], cohort_files["truth"], out=tmp_path / "full", **kw)
    d = tmp_path / "pcc"
    d.mkdir()
    for s, g in full.gene_scores.groupby("sample_id", observed=True):
        r = {str(k): (None if np.isnan(v) else float(v)) for k, v in zip(g["gene"], g["pcc"], strict=True)}
        (d / f"{s}_gene_pcc.json").write_text(json.dumps({"pearson_corr": r}))
    types = full.hvg_scores[["sample_id", "cancer_type"]]
    types.to_csv(tmp_path / "types.csv", index=False)
    args = ["-q", "score", str(d), "--gene-pcc", "--gene-variance", str(tmp_path / "full"), "--cancer-types",
            str(tmp_path / "types.csv"), "--pathways", str(cohort_files["pathways"]), "--hvg", str(lists),
            "--out", str(tmp_path / "pcc_run")]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    got = pd.read_csv(tmp_path / "pcc_run" / "pathway_scores.csv")
    ref = full.pathway_scores
    for col in ("gpc", "gpc_sd", "n_scored", "variance"):
        np.testing.assert_allclose(got[col], ref[col].astype(float), atol=1e-12, equal_nan=True)
    assert (
        got["variance_level"].fillna(0).astype(int).tolist()
        == ref["variance_level"].fillna(0).astype(int).tolist()
    )
    summary = json.loads((tmp_path / "pcc_run" / "summary.json").read_text())
    for k in ("gpc_hallmark", "gpc_go", "hvg_pcc_macro", "hvg_pcc_micro"):
        assert summary["headline"][k] == pytest.approx(full.headline[k], abs=1e-12), k
    assert summary["headline"]["gpc_by_variance_level"] == pytest.approx(
        full.headline["gpc_by_variance_level"]
    )
    assert "clustering" in summary["not_computable"]
    from gpc_bench.compare import leaderboard

    lb = leaderboard([tmp_path / "full", tmp_path / "pcc_run"], reference="pred_noisy", n_boot=0)
    assert lb.table.set_index("model").loc["pcc", "tie_rate_go"] == 1  # the same r: a tie everywhere
    assert any("truth not verified" in n for n in lb.info["notes"])
    # without gene variances or HVG lists, the run says what it could not compute
    from gpc_bench.scoring_pcc import score_correlations

    bare = score_correlations(d, pathways=cohort_files["pathways"])
    assert set(bare.summary["not_computable"]) == {
        "variance_levels",
        "hvg",
        "depth_baseline",
        *NEED_PREDICTIONS,
    }
    assert bare.headline["gpc_go"] == pytest.approx(full.headline["gpc_go"], abs=1e-12)


def test_stpath_results_list_of_anndata_read_safely(canon, cohort_files, tmp_path):
    import anndata as ad

    torch = pytest.importorskip("torch", reason="results.pth is a torch file: needs the [model] extra")
    p, t, ref = canon
    objs = []
    for s in ("WSI01_LUAD", "WSI02_COAD"):
        sel = (p.obs["sample_id"] == s).to_numpy()
        a = ad.AnnData(
            np.asarray(p.X)[sel], var=pd.DataFrame(index=p.var_names)
        )  # as STPath's benchmark builds them
        a.layers["groundtruth"] = np.asarray(t.X)[sel]
        a.uns["sample_id"] = s
        a.obsm["coordinates"] = np.random.default_rng(0).random((int(sel.sum()), 2))
        objs.append(a)
    torch.save(objs, tmp_path / "results.pth")
    conv = formats.stpath_results(tmp_path / "results.pth")
    assert conv.report["truth"] == "layers['truth']" and conv.report["n_wsi"] == 2
    _same_scores(score(conv.adata, pathways=cohort_files["pathways"], checksum=False), ref)

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("true",))

    torch.save([Evil()], tmp_path / "evil.pth")
    with pytest.raises(InputError, match="refusing to load posix.system|refusing to load nt.system"):
        formats.stpath_results(tmp_path / "evil.pth")


def test_gene_correlations_with_the_truth_give_levels_and_top_n_hvgs(cohort, cohort_files, tmp_path):
    from gpc_bench.scoring_pcc import score_correlations

    full = score(
        cohort_files["noisy"], cohort_files["truth"], pathways=cohort_files["pathways"], checksum=False
    )
    table = full.gene_scores[["sample_id", "gene", "pcc"]].astype({"sample_id": str, "gene": str})
    types = dict(zip(full.hvg_scores["sample_id"], full.hvg_scores["cancer_type"], strict=True))
    res = score_correlations(table, truth=cohort_files["truth"], cancer_types=types,
                             pathways=cohort_files["pathways"])  # fmt: skip
    # the depth baseline needs only the truth; the adjusted r needs the predictions' co-moments
    assert set(res.summary["not_computable"]) == NEED_PREDICTIONS
    for k in ("hvg_pcc_macro", "hvg_pcc_micro", "gpc_hallmark", "gpc_go"):
        assert res.headline[k] == pytest.approx(full.headline[k], abs=1e-10), k
    assert res.headline["gpc_by_variance_level"] == pytest.approx(full.headline["gpc_by_variance_level"])
    np.testing.assert_allclose(res.gene_variance["variance"], full.gene_variance["variance"], rtol=1e-9)
    with pytest.raises(InputError, match="not both"):
        score_correlations(
            table, truth=cohort_files["truth"], gene_variance=tmp_path, pathways=cohort_files["pathways"]
        )


def test_stflow_spot_counts_from_the_embeddings(canon, tmp_path):
    import h5py

    p, t, _ = canon
    (tmp_path / "emb").mkdir()
    order = list(dict.fromkeys(p.obs["sample_id"].astype(str)))
    for s in order:
        names = p.obs_names[(p.obs["sample_id"] == s).to_numpy()]
        with h5py.File(tmp_path / "emb" / f"{s}.h5", "w") as f:
            f["embeddings"] = np.zeros((len(names), 2), np.float32)
            f["barcodes"] = np.array([b.encode() for b in names])
    np.savez(tmp_path / "eval.npz", preds_all=np.asarray(p.X), targets_all=np.asarray(t.X))
    pd.DataFrame({"sample_id": order}).to_csv(tmp_path / "order.csv", index=False)
    (tmp_path / "g.json").write_text(json.dumps({"genes": list(p.var_names)}))
    conv = formats.stflow(tmp_path / "eval.npz", samples=tmp_path / "order.csv", genes=tmp_path / "g.json",
                          embeddings=tmp_path / "emb")  # fmt: skip
    assert (
        list(conv.adata.obs_names) == list(p.obs_names)
        and conv.report["spot_order"] == "barcodes from embeddings"
    )
    with pytest.raises(InputError, match="no n_spots column"):
        formats.stflow(tmp_path / "eval.npz", samples=tmp_path / "order.csv", genes=tmp_path / "g.json")


def test_gene_pcc_folders_as_the_tools_leave_them(cohort, cohort_files, tmp_path):
    """STFlow's folder (<sample>_results.json + all_results.json pooled over every slide + config.json),
    HistoPrism's top50/ (with oncotree_average_pcc.csv): the pooled table and the side files are not
    WSIs, and the numbers equal the full run's; HEST's results.json alone is refused as pooled."""
    from scipy.stats import pearsonr

    from gpc_bench.scoring_pcc import score_correlations

    kw = dict(pathways=cohort_files["pathways"], checksum=False)
    full = score(cohort_files["noisy"], cohort_files["truth"], out=tmp_path / "full", **kw)
    d = tmp_path / "stflow"
    d.mkdir()
    for s, g in full.gene_scores.groupby("sample_id", observed=True):  # STFlow: HEST's pearson_corrs layout
        items = [{"name": str(k), "pearson_corr": float(v)} for k, v in zip(g["gene"], g["pcc"], strict=True)]
        (d / f"{s}_results.json").write_text(json.dumps({"pearson_corrs": items, "pearson_mean": 0.0}))
    pred = cohort.predictions["noisy"]
    t = cohort.truth[pred.obs_names].copy() if set(pred.obs_names) <= set(cohort.truth.obs_names) else None
    pooled = []
    if t is not None:  # r over all slides' spots at once, as STFlow's all_results.json
        for j, gene in enumerate(pred.var_names[:20]):
            r = pearsonr(np.asarray(t.X)[:, j], np.asarray(pred.X)[:, j])[0]
            pooled.append({"name": str(gene), "pearson_corr": float(r)})
    (d / "all_results.json").write_text(
        json.dumps({"pearson_corrs": pooled or [{"name": "G00000", "pearson_corr": 0.9}]})
    )
    (d / "config.json").write_text(json.dumps({"lr": 0.001}))
    res = score_correlations(
        d, gene_variance=tmp_path / "full", **{k: v for k, v in kw.items() if k != "checksum"}
    )
    info = res.summary["inputs"]["gene_pcc"]
    assert "all_results.json" in info["pooled"] and "config.json" in info["ignored"]
    assert res.summary["counts"]["n_wsi"] == full.summary["counts"]["n_wsi"]
    assert any("all_results.json is not a WSI's table" in w for w in res.summary["warnings"])
    for k in ("gpc_hallmark", "gpc_go"):
        assert res.headline[k] == pytest.approx(full.headline[k], abs=1e-12), k
    # HistoPrism's top50/ folder with its per-cancer-type averages
    h = tmp_path / "top50"
    h.mkdir()
    for s, g in full.gene_scores.groupby("sample_id", observed=True):
        r = {str(k): float(v) for k, v in zip(g["gene"], g["pcc"], strict=True)}
        (h / f"{s}_gene_pcc.json").write_text(json.dumps({"pearson_corr": r, "average_pcc": 0.0}))
    (h / "oncotree_average_pcc.csv").write_text("oncotree_code,average_pcc\nBRCA,0.1\n")
    res = score_correlations(h, pathways=cohort_files["pathways"])
    assert "oncotree_average_pcc.csv" in res.summary["inputs"]["gene_pcc"]["ignored"]
    assert res.headline["gpc_go"] == pytest.approx(full.headline["gpc_go"], abs=1e-12)
    # HEST-Benchmark's results.json: one pooled split, not a WSI
    e = tmp_path / "hest" / "split0"
    e.mkdir(parents=True)
    (e / "results.json").write_text(json.dumps({"pearson_corrs": [{"name": "G00000", "pearson_corr": 0.3}]}))
    (e / "summary.json").write_text(json.dumps({"n_test": 10}))
    for target in (e, e / "results.json"):
        with pytest.raises(InputError, match="only pooled correlation tables"):
            score_correlations(target, pathways=cohort_files["pathways"])


def test_ensembl_keyed_correlations_with_a_symbol_truth(tmp_path):
    """HistoPrism's JSON keyed by Ensembl IDs (its 38,982-gene panel) against a symbol truth: genes are
    matched as score matches them, so the truth gives the variance levels for every gene."""
    import anndata as ad

    from gpc_bench.genes import ensembl_to_symbol
    from gpc_bench.io.gmt import GeneSet, write_gmt
    from gpc_bench.scoring_pcc import score_correlations

    ens = ["ENSG00000143384", "ENSG00000159216", "ENSG00000184012", "ENSG00000160201", "ENSG00000140650",
           "ENSG00000182621", "ENSG00000213809", "ENSG00000158747"]  # fmt: skip
    sym = [ensembl_to_symbol()[e] for e in ens]
    assert sym[:3] == ["MCL1", "RUNX1", "TMPRSS2"]
    rng = np.random.default_rng(0)
    obs = pd.DataFrame(
        {"sample_id": np.repeat(["a", "b"], 30), "cancer_type": "T"}, index=[f"s{i}" for i in range(60)]
    )
    x = rng.random((60, len(ens))).astype(np.float32)
    truth = ad.AnnData(x, obs=obs)
    truth.var_names = sym
    truth.write_h5ad(tmp_path / "truth.h5ad")
    pred = truth.copy()
    pred.X = (x + rng.normal(0, 0.3, x.shape)).astype(np.float32)
    write_gmt(tmp_path / "h.gmt", [GeneSet("hallmark", "H", tuple(sym))])
    full = score(pred, tmp_path / "truth.h5ad", pathways=tmp_path / "h.gmt", min_genes=1, checksum=False)
    d = tmp_path / "all_genes"
    d.mkdir()
    by_sym = dict(zip(sym, ens, strict=True))
    for s, g in full.gene_scores.groupby("sample_id", observed=True):
        r = {by_sym[str(k)]: float(v) for k, v in zip(g["gene"], g["pcc"], strict=True)}
        (d / f"{s}_gene_pcc.json").write_text(json.dumps({"pearson_corr": r}))
    res = score_correlations(d, truth=tmp_path / "truth.h5ad", pathways=tmp_path / "h.gmt", min_genes=1)
    assert res.summary["counts"]["n_genes_shared"] == len(ens)
    assert res.pathway_scores["n_scored"].tolist() == [len(ens)]
    np.testing.assert_allclose(res.pathway_scores["variance"], full.pathway_scores["variance"], rtol=1e-6)
    assert res.headline["gpc_hallmark"] == pytest.approx(full.headline["gpc_hallmark"], abs=1e-7)


def test_stem_several_slides_become_one_cohort(canon, cohort_files, tmp_path):
    """STEM writes one generated_samples_*.pt per held-out slide (stem_sample.py: torch.save of the
    (N*K, 1, G) draws): several files, or a folder of them, convert into one cohort file."""
    torch = pytest.importorskip("torch", reason="STEM writes torch tensors: needs the [model] extra")

    p, t, ref = canon
    k = 2
    (tmp_path / "genes.txt").write_text("\n".join(p.var_names) + "\n")
    (tmp_path / "slides").mkdir()
    sources = []
    for s in ("WSI01_LUAD", "WSI02_COAD"):
        one = p[p.obs["sample_id"] == s]
        t[t.obs["sample_id"] == s].copy().write_h5ad(tmp_path / "slides" / f"{s}.h5ad")
        draws = np.repeat(one.X[:, None, :], k, axis=1).astype(np.float32)  # draws equal to the prediction
        (tmp_path / "gen" / s).mkdir(parents=True)
        sources.append(tmp_path / "gen" / s / "generated_samples_best_2sample.pt")
        torch.save(torch.from_numpy(draws.reshape(-1, 1, one.n_vars)), sources[-1])
    sl = tmp_path / "slides"
    args = ["convert", *map(str, sources), "--from", "stem", "--slide", str(sl / "WSI01_LUAD.h5ad"),
            "--slide", str(sl / "WSI02_COAD.h5ad"), "--genes", str(tmp_path / "genes.txt"),
            "--n-draws", "2", "--out", str(tmp_path / "a.h5ad")]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    from gpc_bench.baselines.adapters import convert

    conv = convert(
        "stem", tmp_path / "gen", slide=tmp_path / "slides", genes=tmp_path / "genes.txt", n_draws=2
    )
    assert conv.report["n_wsi"] == 2 and "log2(count + 1)" in conv.report["units"]
    a = score(tmp_path / "a.h5ad", t, pathways=cohort_files["pathways"], checksum=False)
    b = score(conv.adata, t, pathways=cohort_files["pathways"], checksum=False)
    _same_scores(a, ref)
    _same_scores(b, ref)
    with pytest.raises(InputError, match="2 STEM file"):
        convert(
            "stem",
            sources,
            slide=[tmp_path / "slides" / "WSI01_LUAD.h5ad"],
            genes=tmp_path / "genes.txt",
            n_draws=2,
        )


def test_an_assumed_spot_order_is_checked(tmp_path):
    """A HistoPrism CSV has no barcodes: in the truth's order it passes the total-expression check,
    written in another order (HEST's embedding order, here shuffled) it is warned about."""
    import anndata as ad

    from gpc_bench.baselines.adapters import convert

    rng = np.random.default_rng(0)
    n, g = 120, 60
    depth = rng.lognormal(0, 0.6, n)[:, None]  # spots differ in depth, as real spots do
    x = np.log1p(rng.poisson(depth * rng.gamma(2, 1, g)[None, :])).astype(np.float32)
    obs = pd.DataFrame({"sample_id": np.repeat(["A", "B"], n // 2), "cancer_type": "T"},
                       index=[f"{i % 11}x{i // 11}" for i in range(n)])  # fmt: skip
    truth = ad.AnnData(x, obs=obs, var=pd.DataFrame(index=[f"G{j}" for j in range(g)]))
    truth.write_h5ad(tmp_path / "truth.h5ad")
    pred = x + rng.normal(0, 0.5, x.shape).astype(np.float32)
    df = pd.DataFrame(pred, columns=list(truth.var_names))
    df.insert(0, "sample_id", obs["sample_id"].to_numpy())
    df.to_csv(tmp_path / "ok.csv", index=False)
    ok = convert("histoprism", tmp_path / "ok.csv", truth=tmp_path / "truth.h5ad")
    assert ok.report["spot_order_verified"] is False and "warning" not in ok.report["order_check"]
    assert ok.report["order_check"]["median_r_total"] > 0.5
    shuffled = pd.concat(
        [grp.iloc[rng.permutation(len(grp))] for _, grp in df.groupby("sample_id", sort=False)]
    )
    shuffled.to_csv(tmp_path / "bad.csv", index=False)
    bad = convert("histoprism", tmp_path / "bad.csv", truth=tmp_path / "truth.h5ad")
    assert "looks wrong" in bad.report["order_check"]["warning"] and bad.report["warnings"]
