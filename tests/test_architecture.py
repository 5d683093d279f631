"""The shape asked of `score`: a recorded config, settings, array-level metrics, one read path."""

from __future__ import annotations

import json
import mmap
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import reference_scores
from scipy.stats import pearsonr

from gpc_bench import InputError, ScoreConfig, Settings, load_run, score
from gpc_bench import metrics as M
from gpc_bench._tables import TABLE_FILES

# every table file a run folder holds (test_score checks the list itself)
TABLES = tuple(TABLE_FILES.values())


def _same_tables(a, b) -> None:
    for name in TABLES + ("summary.json",):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


# ------------------------------------------------------------------------------- array-level metrics
def test_gene_pcc_against_a_pearsonr_loop():
    rng = np.random.default_rng(3)
    truth = rng.poisson(2.0, (80, 30)).astype(np.float32)
    pred = (truth + rng.normal(0, 2, truth.shape)).astype(np.float32)
    truth[:, 4] = 1.0  # constant truth: NaN
    pred[:, 7] = 2.5  # constant prediction: 0 or NaN
    t64, p64 = truth.astype(np.float64), pred.astype(np.float64)  # pearsonr keeps float32 in float32
    ref = np.array([pearsonr(t64[:, g], p64[:, g])[0] if g not in (4, 7) else np.nan for g in range(30)])
    for mode, at7 in (("zero", 0.0), ("exclude", np.nan)):
        r = M.gene_pcc(truth, pred, mode)
        np.testing.assert_allclose(np.delete(r, [4, 7]), np.delete(ref, [4, 7]), atol=1e-12)
        assert np.isnan(r[4]) and (np.isnan(r[7]) if np.isnan(at7) else r[7] == at7)
    ids = np.repeat(["b", "a"], 40)
    samples, rm = M.gene_pcc_by_wsi(truth, pred, ids)
    assert list(samples) == ["a", "b"] and rm.shape == (2, 30)
    g = 11
    assert rm[0, g] == pytest.approx(pearsonr(t64[40:, g], p64[40:, g])[0], abs=1e-12)


def test_pathway_scores_against_a_loop():
    rng = np.random.default_rng(4)
    r = rng.uniform(-1, 1, (5, 40))
    r[rng.random(r.shape) < 0.2] = np.nan
    r[:, 3] = np.nan  # never defined
    symbols = np.array([f"S{i}" for i in range(40)], dtype=object)
    sets = [
        ["S1", "S2", "S3", "S9", "NOPE"],
        ["S3"],
        ["X1", "X2"],
        [f"S{i}" for i in range(10, 30)],
        ["S5", "S5"],
    ]
    memb = M.membership(symbols, sets)
    assert memb.set_size.tolist() == [5, 1, 2, 20, 1] and memb.n_in_panel.tolist() == [4, 1, 0, 20, 1]
    res = M.pathway_scores(r, memb, min_genes=2)
    assert res.status.tolist() == ["ok", "too_few_genes", "no_genes_in_panel", "ok", "too_few_genes"]
    for k, genes in enumerate(sets):
        idx = [int(g[1:]) for g in dict.fromkeys(genes) if g.startswith("S")]
        per = [np.nanmean(r[i, idx]) if np.isfinite(r[i, idx]).any() else np.nan for i in range(5)]
        if res.status[k] == "ok":
            np.testing.assert_allclose(res.per_wsi[:, k], per, atol=1e-12)
            assert res.gpc[k] == pytest.approx(np.nanmean(per), abs=1e-12)
            assert res.gpc_sd[k] == pytest.approx(np.nanstd(per, ddof=1), abs=1e-12)
        else:
            assert np.isnan(res.gpc[k]) and np.isnan(res.per_wsi[:, k]).all()


def test_variance_levels_match_pandas_qcut():
    rng = np.random.default_rng(5)
    v = rng.lognormal(0, 2, 1000)
    levels, thresholds = M.variance_levels(v, 10)
    expect = pd.qcut(v, 10, labels=False) + 1
    np.testing.assert_array_equal(levels, expect)
    assert len(thresholds) == 9
    v[:3] = [0.0, np.nan, -1.0]  # no level
    levels, _ = M.variance_levels(v, 7)
    assert levels[:3].tolist() == [0, 0, 0]
    np.testing.assert_array_equal(levels[3:], pd.qcut(v[3:], 7, labels=False) + 1)


def test_hvg_macro_micro():
    macro, micro = M.hvg_macro_micro(np.array([0.1, 0.3, 0.5, np.nan]), ["A", "A", "B", "B"])
    assert macro == pytest.approx((0.2 + 0.5) / 2) and micro == pytest.approx(0.3)


def test_score_composes_the_array_metrics(cohort, cohort_files):
    res = score(
        cohort_files["noisy"], cohort_files["truth"], pathways=cohort_files["pathways"], checksum=False
    )
    truth, pred = cohort.truth, cohort.predictions["noisy"]
    samples, r = M.gene_pcc_by_wsi(truth.X, pred.X, truth.obs["sample_id"].astype(str))
    ours = res.gene_scores.pivot(index="sample_id", columns="gene", values="pcc").loc[samples, pred.var_names]
    np.testing.assert_allclose(ours.to_numpy(), r, atol=1e-10)
    sets = {n: g for s in cohort.gene_sets.values() for n, g in s.items()}
    names = sorted(sets, key=lambda n: ("go" if n.startswith("GO") else "hallmark", n))
    ps = M.pathway_scores(r, M.membership(np.asarray(pred.var_names, dtype=object), [sets[n] for n in names]))
    got = res.pathway_scores.set_index("pathway")["gpc"].loc[names].to_numpy()
    np.testing.assert_allclose(got, ps.gpc, atol=1e-10)


# ------------------------------------------------------------------------------ config and settings
def test_config_round_trip_gives_byte_identical_tables(cohort_files, tmp_path):
    from click.testing import CliRunner

    from gpc_bench.cli import main

    cfg = ScoreConfig(
        constant_prediction="exclude",
        min_genes=3,
        n_levels=7,
        hvg="20",
        cluster="wsi",
        pathways=(str(cohort_files["pathways"]),),
    )
    first = score(
        cohort_files["noisy"], cohort_files["truth"], config=cfg, out=tmp_path / "a", checksum=False
    )
    back = load_run(tmp_path / "a").config
    assert back == first.config and back.collection_id.startswith("sha256:")
    assert back.replace(collection_id=None) == cfg
    score(cohort_files["noisy"], cohort_files["truth"], config=back, out=tmp_path / "b", checksum=False)
    _same_tables(tmp_path / "a", tmp_path / "b")
    # the CLI re-scores from a recorded summary.json the same way
    res = CliRunner().invoke(
        main,
        [
            "-q",
            "score",
            str(cohort_files["noisy"]),
            "--truth",
            str(cohort_files["truth"]),
            "--config",
            str(tmp_path / "a" / "summary.json"),
            "--out",
            str(tmp_path / "c"),
            "--no-checksum",
        ],
    )
    assert res.exit_code == 0, res.output
    _same_tables(tmp_path / "a", tmp_path / "c")
    assert json.loads((tmp_path / "c" / "summary.json").read_text())["config"]["n_levels"] == 7


def test_config_refuses_bad_values_and_changed_collections(cohort_files, tmp_path):
    for bad in (
        dict(constant_prediction="drop"),
        dict(n_levels=0),
        dict(cluster="cells"),
        dict(variance_bins="x"),
    ):
        with pytest.raises(InputError):
            ScoreConfig(**bad)
    with pytest.raises(InputError, match="unknown score config"):
        ScoreConfig.from_dict({"levels": 3})
    with pytest.raises(TypeError, match="unknown scoring option"):
        score(cohort_files["noisy"], cohort_files["truth"], levels=3)
    cfg = ScoreConfig(pathways=(str(cohort_files["pathways"]),), collection_id="sha256:0000")
    with pytest.raises(InputError, match="pathway files changed"):
        score(cohort_files["noisy"], cohort_files["truth"], config=cfg, checksum=False)
    assert ScoreConfig(hvg=50, cluster="none").to_dict()["hvg"] == "50"


def test_settings_read_the_environment_in_one_place(monkeypatch, tmp_path):
    env = {
        "GPC_BENCH_THREADS": "3",
        "GPC_BENCH_KERNEL": "NumPy",
        "GPC_BENCH_BLOCK_MB": "0.5",
        "GPC_BENCH_CACHE": str(tmp_path),
    }
    s = Settings.from_env(env)
    assert (s.threads, s.kernel, s.block_bytes, s.cache_dir) == (3, "numpy", 1 << 19, tmp_path)
    assert Settings.from_env({}, threads=2).threads == 2
    with pytest.raises(InputError, match="GPC_BENCH_THREADS"):
        Settings.from_env({"GPC_BENCH_THREADS": "many"})
    with pytest.raises(InputError, match="GPC_BENCH_KERNEL"):
        Settings.from_env({"GPC_BENCH_KERNEL": "cuda"})
    from gpc_bench.metrics.pcc import kernel_name

    assert kernel_name(10**12, choice=Settings.from_env({"GPC_BENCH_KERNEL": "numpy"}).kernel) == "numpy"


def test_no_module_but_settings_reads_the_environment():
    import re

    # the repository's sources, whether the package is installed editable or not
    repo = Path(__file__).resolve().parents[1]
    readers = sorted(
        p.relative_to(repo).as_posix()
        for folder in ("gpc_bench", "baselines")
        for p in (repo / folder).rglob("*.py")
        if re.search(r"os\.environ|os\.getenv|settings import current", p.read_text())
    )
    # torchrun hands each training process its WORLD_SIZE in the environment: that is its contract
    assert readers == ["baselines/histoprism/train.py", "gpc_bench/settings.py"]


def test_settings_cache_dir_is_where_checksums_go(cohort_files, tmp_path):
    cache = tmp_path / "my-cache"
    score(cohort_files["noisy"], cohort_files["truth"], pathways=[cohort_files["pathways"]],
          settings=Settings(cache_dir=cache))  # fmt: skip
    stored = json.loads((cache / "sha256.json").read_text())
    assert any(str(Path(cohort_files["truth"]).resolve()) in k for k in stored)


# ------------------------------------------------------------------------------------- read path
def _shuffled_files(cohort, tmp_path, model: str, seed: int):
    """Write truth.h5ad (spots shuffled), pred.h5ad (``model``) and sets.gmt; return the sets."""
    from gpc_bench.io.gmt import GeneSet, write_gmt

    truth = cohort.truth[np.random.default_rng(seed).permutation(cohort.truth.n_obs)].copy()
    truth.write_h5ad(tmp_path / "truth.h5ad")
    cohort.predictions[model].write_h5ad(tmp_path / "pred.h5ad")
    sets = {n: g for s in cohort.gene_sets.values() for n, g in s.items()}
    write_gmt(tmp_path / "sets.gmt", [GeneSet("go", n, tuple(g)) for n, g in sets.items()])
    return sets


def test_small_blocks_and_shuffled_spots_match_the_reference(cohort, tmp_path):
    """WSIs read in row blocks of a few spots, truth spots in another order: the scipy reference."""
    sets = _shuffled_files(cohort, tmp_path, "noisy", seed=0)
    block = 7 * 4 * cohort.truth.n_vars  # 7 spots per block
    res = score(
        tmp_path / "pred.h5ad",
        tmp_path / "truth.h5ad",
        pathways=tmp_path / "sets.gmt",
        settings=Settings(block_bytes=block),
        checksum=False,
    )
    assert res.run_info["matrix_reads"]["blocks"] > 3 * res.summary["counts"]["n_wsi"]
    r_ref, _, gpc_ref = reference_scores(cohort.truth, cohort.predictions["noisy"], sets)
    gs = res.gene_scores.set_index(["sample_id", "gene"])["pcc"]
    np.testing.assert_allclose(gs.loc[r_ref.index].to_numpy(), r_ref.to_numpy(), atol=1e-10)
    ps = res.pathway_scores.set_index("pathway")["gpc"]
    np.testing.assert_allclose(ps.loc[gpc_ref.index].to_numpy(), gpc_ref.to_numpy(), atol=1e-10)


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_without_mmap_or_cache_probe_the_numbers_are_the_same(cohort_files, tmp_path, monkeypatch, kernel):
    """A platform without mmap.MAP_SHARED/PROT_READ or os.RWF_NOWAIT (Windows, macOS)."""
    monkeypatch.setenv("GPC_BENCH_KERNEL", kernel)  # both kernels read mapped WSIs in place
    kw = dict(pathways=cohort_files["pathways"], checksum=False, cluster="spot")
    fast = score(cohort_files["noisy"], cohort_files["truth"], out=tmp_path / "default", **kw)
    assert fast.run_info["matrix_reads"]["mmap"] == fast.summary["counts"]["n_wsi"]  # every WSI mapped
    for mod, names in ((mmap, ("MAP_SHARED", "PROT_READ", "MAP_POPULATE")), (os, ("RWF_NOWAIT", "preadv"))):
        for n in names:
            monkeypatch.delattr(mod, n, raising=False)
    bare = score(cohort_files["noisy"], cohort_files["truth"], out=tmp_path / "bare", **kw)
    assert bare.run_info["matrix_reads"]["mmap"] == 0 and bare.run_info["matrix_reads"]["blocks"] > 0
    for name in TABLES:  # the same bits either way: the kernel sums rows in the same order
        assert (tmp_path / "default" / name).read_bytes() == (tmp_path / "bare" / name).read_bytes(), name


def test_mapped_rows_equal_h5py_rows_and_odd_storage_falls_back(cohort, tmp_path, monkeypatch):
    import h5py

    from gpc_bench.io.h5ad import H5adSource

    x = np.random.default_rng(0).random((50, 37), dtype=np.float32)
    rows = np.array([3, 1, 2, 10, 9], dtype=np.int64)
    for name, kw in (
        ("contig", {}),
        ("chunked", {"chunks": (8, 37)}),
        ("gzip", {"chunks": (8, 37), "compression": "gzip"}),
    ):
        path = tmp_path / f"{name}.h5ad"
        a = cohort.truth[:50, :37].copy()
        a.X = x
        a.write_h5ad(path)
        if kw:  # rewrite X with another storage
            with h5py.File(path, "r+") as f:
                del f["X"]
                f.create_dataset("X", data=x, **kw)
        src = H5adSource(path, "truth")
        m = src.map_rows(rows)
        if name == "gzip":
            assert m is None  # filtered storage is read with h5py
        else:
            assert np.array_equal(m.rows(), x[rows]) and np.array_equal(src.read_rows(rows), x[rows])
        src.close()
    monkeypatch.setenv("GPC_BENCH_MMAP", "0")
    assert Settings.from_env().mmap is False


def test_backed_anndata_truth_with_shuffled_spots_equals_the_file_run(cohort, tmp_path):
    import anndata as ad

    _shuffled_files(cohort, tmp_path, "good", seed=1)
    kw = dict(pathways=tmp_path / "sets.gmt", checksum=False)
    files = score(tmp_path / "pred.h5ad", tmp_path / "truth.h5ad", **kw)
    backed_truth = ad.read_h5ad(tmp_path / "truth.h5ad", backed="r")
    backed_pred = ad.read_h5ad(tmp_path / "pred.h5ad", backed="r")
    for pred, tr in (
        (tmp_path / "pred.h5ad", backed_truth),
        (backed_pred, backed_truth),
        (cohort.predictions["good"], backed_truth),
    ):
        res = score(pred, tr, **kw)
        pd.testing.assert_frame_equal(res.pathway_scores, files.pathway_scores, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(res.gene_scores["pcc"], files.gene_scores["pcc"], atol=1e-12)


def test_a_failing_run_closes_its_files_and_reader(cohort_files, tmp_path, monkeypatch):
    import threading

    import h5py

    import gpc_bench._per_wsi as per_wsi

    def boom(*a, **k):
        raise RuntimeError("kernel failed")

    monkeypatch.setattr(per_wsi.MomentAccumulator, "add", boom)
    with pytest.raises(RuntimeError, match="kernel failed"):
        score(cohort_files["noisy"], cohort_files["truth"], pathways=cohort_files["pathways"], checksum=False)
    assert not any(t.name.startswith("gpc-bench-read") for t in threading.enumerate())
    with h5py.File(cohort_files["truth"], "r+"):  # no handle of ours is left open on it
        pass


def test_an_existing_output_folder_is_refused_before_any_work(cohort_files, tmp_path, monkeypatch):
    import gpc_bench.scoring as scoring

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("keep")
    monkeypatch.setattr(scoring, "open_source", lambda *a, **k: pytest.fail("inputs were opened"))
    with pytest.raises(InputError, match="already exists"):
        score(cohort_files["noisy"], cohort_files["truth"], out=tmp_path / "out")


# -------------------------------------------------------------------------------- metric registry
def test_levels_come_from_the_runs_config_everywhere(cohort_files, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from gpc_bench import plot
    from gpc_bench.compare import leaderboard
    from gpc_bench.metrics.registry import HEADLINE, RANK_COLUMNS

    kw = dict(pathways=cohort_files["pathways"], checksum=False, n_levels=20)
    for name in ("good", "noisy"):
        score(cohort_files[name], cohort_files["truth"], name=name, out=tmp_path / name, **kw)
    lb = leaderboard([tmp_path / "good", tmp_path / "noisy"], n_boot=20)
    assert [c for c in lb.table if c.startswith("gpc_level_")] == [f"gpc_level_{k}" for k in range(1, 21)]
    assert lb.info["n_levels"] == 20
    fig = plot.levels([tmp_path / "good", tmp_path / "noisy"])
    assert len(fig.axes[0].lines[0].get_xdata()) == 20
    fig = plot.scatter(tmp_path / "good", tmp_path / "noisy")
    assert fig.axes[-1].get_gid() == "colorbar" and len(fig.axes[-1].get_yticks()) == 20
    score(
        cohort_files["mean"],
        cohort_files["truth"],
        name="mean",
        out=tmp_path / "ten",
        **(kw | {"n_levels": 10}),
    )
    with pytest.raises(InputError, match="different n_levels .*--levels"):
        leaderboard([tmp_path / "good", tmp_path / "ten"], n_boot=0)
    assert set(RANK_COLUMNS) <= {m.column for m in HEADLINE}


def test_a_failing_map_falls_back_to_h5py_for_the_rest_of_the_run(cohort_files, tmp_path, monkeypatch):
    from gpc_bench.io.h5ad import H5adSource

    monkeypatch.setenv("GPC_BENCH_KERNEL", "numba")
    kw = dict(pathways=cohort_files["pathways"], checksum=False)
    ok = score(cohort_files["noisy"], cohort_files["truth"], **kw)

    def broken(self, rows, layer=None, populate=True):
        raise OSError("mmap: No such device")  # e.g. a file system that cannot map

    monkeypatch.setattr(H5adSource, "map_rows", broken)
    res = score(cohort_files["noisy"], cohort_files["truth"], **kw)
    assert res.run_info["matrix_reads"]["mmap"] == 0
    pd.testing.assert_frame_equal(res.pathway_scores, ok.pathway_scores)
