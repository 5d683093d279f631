"""Shards that merge exactly, and the one evaluation behind score, --gene-pcc and --intersect."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import make_small

from gpc_bench import InputError, score
from gpc_bench.merge import merge
from gpc_bench.scoring import collect
from gpc_bench.stats import read_stats, shard_indices


@pytest.fixture(scope="module")
def hard_files(tmp_path_factory):
    """A cohort with what merging must get right: a gene constant everywhere, genes constant in one
    WSI only (truth and prediction), and cancer types spread over several WSIs."""
    from gpc_bench.io.gmt import GeneSet, write_gmt

    c = make_small(seed=5, n_wsi=7)
    truth, pred = c.truth.copy(), c.predictions["noisy"].copy()
    x, y = np.asarray(truth.X).copy(), np.asarray(pred.X).copy()
    sid = truth.obs["sample_id"].astype(str).to_numpy()
    first, last = sid == sorted(set(sid))[0], sid == sorted(set(sid))[-1]
    x[:, 0] = 1.5  # constant everywhere: r undefined in every WSI
    x[first, 1] = 0.0  # not expressed in one WSI
    y[last, 2] = 0.25  # predicted constant in one WSI
    truth.X, pred.X = x, y
    d = tmp_path_factory.mktemp("hard")
    truth.write_h5ad(d / "truth.h5ad")
    pred.write_h5ad(d / "pred.h5ad")
    (d / "sets").mkdir()
    for coll, sets in c.gene_sets.items():
        write_gmt(d / "sets" / f"{coll}.gmt", [GeneSet(coll, n, tuple(g)) for n, g in sets.items()])
    return d


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _assert_same_run(a, b):
    """Every file byte-identical but run_info.json (timing and provenance of the run itself)."""
    assert _files(a) == _files(b)
    for name in _files(a):
        if name != "run_info.json":
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_shard_assignment_is_round_robin_by_sample_id():
    assert shard_indices(7, 1, 3).tolist() == [0, 3, 6]
    assert shard_indices(7, 3, 3).tolist() == [2, 5]
    assert shard_indices(2, 3, 4).tolist() == []  # more shards than WSIs: an empty shard
    covered = np.sort(np.concatenate([shard_indices(11, k, 4) for k in range(1, 5)]))
    assert covered.tolist() == list(range(11))


def test_three_shards_as_separate_processes_merge_to_one_score(hard_files, tmp_path):
    d = hard_files
    common = ["--truth", str(d / "truth.h5ad"), "--pathways", str(d / "sets"), "--cluster", "wsi"]
    full = tmp_path / "full"
    score(d / "pred.h5ad", d / "truth.h5ad", pathways=[d / "sets"], cluster="wsi", out=full)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gpc_bench",
                "-q",
                "score",
                str(d / "pred.h5ad"),
                *common,
                "--shard",
                f"{k}/3",
                "--out",
                str(tmp_path / f"part_{k}"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for k in (1, 2, 3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    # a cancer type is split across shards
    types = [set(read_stats(tmp_path / f"part_{k}").cancer_types) for k in (1, 2, 3)]
    assert types[0] & types[1] or types[0] & types[2] or types[1] & types[2]
    done = subprocess.run(
        [sys.executable, "-m", "gpc_bench", "merge", *(str(tmp_path / f"part_{k}") for k in (3, 1, 2)),
         "--out", str(tmp_path / "merged")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "gpc_hallmark" in done.stdout
    _assert_same_run(full, tmp_path / "merged")
    summary = json.loads((full / "summary.json").read_text())
    assert summary["counts"]["n_truth_constant"] >= 7 + 1  # gene 0 in every WSI, gene 1 in one
    assert summary["counts"]["n_prediction_constant"] >= 1


@pytest.mark.parametrize("n", [7, 9])
def test_one_wsi_per_shard_and_empty_shards(hard_files, tmp_path, n):
    d = hard_files
    opts = dict(pathways=[d / "sets"], hvg="20", protocol="default", checksum=False)
    full = score(d / "pred.h5ad", d / "truth.h5ad", out=tmp_path / "full", **opts)
    parts = [collect(d / "pred.h5ad", d / "truth.h5ad", shard=(k, n), **opts) for k in range(1, n + 1)]
    assert sorted(p.n_wsi for p in parts)[-1] == 1 and sum(p.n_wsi for p in parts) == 7
    merged = merge(parts, out=tmp_path / "merged")
    assert merged.headline == full.headline
    _assert_same_run(tmp_path / "full", tmp_path / "merged")


def test_pooled_protocol_and_hvg_lists_merge_exactly(hard_files, tmp_path):
    d = hard_files
    hvg = tmp_path / "hvg.json"
    hvg.write_text(json.dumps({"genes": [f"G{i:04d}" for i in range(0, 200, 3)]}))
    names = [str(g) for g in read_stats_genes(d)]
    hvg.write_text(json.dumps({"genes": names[3:60:2]}))
    opts = dict(pathways=[d / "sets"], hvg=str(hvg), protocol="stpath-pooled", checksum=False)
    score(d / "pred.h5ad", d / "truth.h5ad", out=tmp_path / "full", **opts)
    for k in (1, 2):
        collect(d / "pred.h5ad", d / "truth.h5ad", shard=(k, 2), out=tmp_path / f"p{k}", **opts)
    merge([tmp_path / "p1", tmp_path / "p2"], out=tmp_path / "merged")
    _assert_same_run(tmp_path / "full", tmp_path / "merged")


def read_stats_genes(d):
    import anndata

    return anndata.read_h5ad(d / "pred.h5ad", backed="r").var_names


def test_merge_refuses_parts_that_do_not_belong_together(hard_files, tmp_path):
    d = hard_files
    opts = dict(pathways=[d / "sets"], checksum=True)
    for k in (1, 2, 3):
        collect(d / "pred.h5ad", d / "truth.h5ad", shard=(k, 3), out=tmp_path / f"p{k}", **opts)
    collect(d / "pred.h5ad", d / "truth.h5ad", shard=(2, 3), min_genes=3, out=tmp_path / "other_cfg", **opts)
    collect(d / "pred.h5ad", d / "truth.h5ad", shard=(1, 2), out=tmp_path / "other_n", **opts)
    truth2 = tmp_path / "truth2.h5ad"
    import anndata

    t = anndata.read_h5ad(d / "truth.h5ad")
    t.X = np.asarray(t.X) * 1.01
    t.write_h5ad(truth2)
    collect(d / "pred.h5ad", truth2, shard=(3, 3), out=tmp_path / "other_truth", **opts)
    p = [tmp_path / f"p{k}" for k in (1, 2, 3)]
    cases = {
        "missing": ([p[0], p[2]], r"shard\(s\) \[2\] of 3 missing"),
        "twice": ([*p, p[1]], "shard 2 given twice"),
        "config": ([p[0], tmp_path / "other_cfg", p[2]], "differ from .* in config"),
        "truth": ([p[0], p[1], tmp_path / "other_truth"], "differ from .* in inputs"),
        "count": ([*p, tmp_path / "other_n"], "different shard counts"),
    }
    for what, (parts, msg) in cases.items():
        with pytest.raises(InputError, match=msg):
            merge(parts, out=tmp_path / f"m_{what}")
        assert not (tmp_path / f"m_{what}").exists(), what
    score(d / "pred.h5ad", d / "truth.h5ad", out=tmp_path / "whole", **opts)
    with pytest.raises(InputError, match="not a shard"):
        merge([tmp_path / "whole"], out=tmp_path / "m_whole")
    with pytest.raises(InputError, match="holds no per-WSI statistics"):
        merge([tmp_path], out=tmp_path / "m_none")


def test_spot_clustering_is_refused_for_shards(hard_files, tmp_path):
    d = hard_files
    with pytest.raises(InputError, match="cluster spot.*shards cannot merge"):
        collect(d / "pred.h5ad", d / "truth.h5ad", pathways=[d / "sets"], cluster="spot", shard="1/2")
    with pytest.raises(InputError, match="not K/N"):
        collect(d / "pred.h5ad", d / "truth.h5ad", pathways=[d / "sets"], shard="half")


def test_gene_pcc_of_a_runs_own_r_gives_its_numbers_and_keys(hard_files, tmp_path):
    """score --gene-pcc fed the run's own per-gene r (with the truth for variances) evaluates to
    the run's numbers, under the same summary schema."""
    from gpc_bench.scoring_pcc import score_correlations

    d = hard_files
    run = score(d / "pred.h5ad", d / "truth.h5ad", pathways=[d / "sets"], checksum=False)
    gs = run.gene_scores
    types = dict(zip(gs["sample_id"].astype(str), gs["cancer_type"].astype(str), strict=True))
    frame = gs[["sample_id", "gene", "pcc"]].astype({"sample_id": str, "gene": str})
    again = score_correlations(frame, pathways=[d / "sets"], cancer_types=types, truth=d / "truth.h5ad")
    for key in ("hvg_pcc_macro", "hvg_pcc_micro", "gpc_hallmark", "gpc_go", "gpc_by_variance_level"):
        assert again.headline[key] == run.headline[key], key
    a, b = run.pathway_scores, again.pathway_scores
    assert np.array_equal(a["gpc"].to_numpy(), b["gpc"].to_numpy(), equal_nan=True)
    assert a["variance_level"].equals(b["variance_level"])
    np.testing.assert_allclose(
        run.gene_variance["variance"].to_numpy(), again.gene_variance["variance"].to_numpy(), rtol=1e-12
    )
    assert set(again.summary) == set(run.summary)
    assert set(again.summary["counts"]) == set(run.summary["counts"])
    assert set(again.headline) == set(run.headline)
    assert again.summary["counts"]["n_truth_constant"] is None  # not knowable from r alone


def test_intersect_re_evaluation_of_a_whole_run_gives_its_numbers(hard_files, tmp_path):
    from gpc_bench.compare.comparable import restrict
    from gpc_bench.io.run import load_run

    d = hard_files
    score(d / "pred.h5ad", d / "truth.h5ad", pathways=[d / "sets"], out=tmp_path / "run", checksum=False)
    run = load_run(tmp_path / "run")
    ps = run.pathway_scores
    keys = list(zip(ps["collection"], ps["pathway"], strict=True))
    hvg = run.hvg_scores
    wsis, types = hvg["sample_id"].astype(str).tolist(), hvg["cancer_type"].astype(str).tolist()
    genes = sorted(run.gene_keys.values())
    rr = restrict(run, keys, wsis, genes, types)
    pw = run.pathway_wsi_scores.pivot(index=["collection", "pathway"], columns="sample_id", values="score")
    want = pw.reindex(index=keys, columns=wsis).to_numpy()
    np.testing.assert_allclose(rr.scores, want, rtol=1e-12, atol=1e-15)
    assert np.array_equal(rr.levels, ps["variance_level"].fillna(0).astype(int).to_numpy())
    np.testing.assert_allclose(rr.hvg, hvg["pcc"].to_numpy(), rtol=1e-12)


def test_activity_and_spatial_statistics_merge_exactly(tmp_path):
    """--activity --spatial --domains: the activity moments, Moran's I and the domain agreement
    are per-WSI statistics, so shards merge into the tables of one run, byte for byte."""
    from test_activity import _gmt, _spatial_cohort

    pred, truth = _spatial_cohort(n_side=6)
    for w in ("C", "D"):  # more WSIs than shards
        p2, t2 = _spatial_cohort(seed=ord(w), n_side=6)
        for a in (p2, t2):
            a.obs["sample_id"] = w
            a.obs_names = [f"{w}{n}" for n in a.obs_names]
        import anndata as ad

        pred, truth = ad.concat([pred, p2]), ad.concat([truth, t2])
    pred.write_h5ad(tmp_path / "pred.h5ad")
    truth.write_h5ad(tmp_path / "truth.h5ad")
    gmt = _gmt(
        tmp_path, {"SMOOTH": [f"G{j:02d}" for j in range(20)], "NOISE": [f"G{j:02d}" for j in range(20, 40)]}
    )
    opts = dict(pathways=gmt, min_genes=1, checksum=False, activity=True, spatial=True, domains="kmeans")
    score(tmp_path / "pred.h5ad", tmp_path / "truth.h5ad", out=tmp_path / "full", **opts)
    for k in (1, 2, 3):
        collect(tmp_path / "pred.h5ad", tmp_path / "truth.h5ad", shard=(k, 3), out=tmp_path / f"p{k}", **opts)
    merge([tmp_path / f"p{k}" for k in (1, 2, 3)], out=tmp_path / "merged")
    _assert_same_run(tmp_path / "full", tmp_path / "merged")
    merged = read_stats(tmp_path / "merged")
    assert np.isfinite(merged.activity_moran).all()
    assert np.isfinite(merged.domains[:, 3]).all() and merged.domains.shape[0] == 4
