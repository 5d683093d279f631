"""The variance-matched pathway null: sampling, scoring formula, calibration on noise, power on signal."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gpc_bench import score
from gpc_bench.compare.null import draw_without_replacement, pathway_null, set_scores
from gpc_bench.io.gmt import GeneSet, write_gmt


@pytest.mark.parametrize(("pool", "k"), [(50, 3), (10, 6), (5, 5)])
def test_draws_are_distinct_and_uniform(pool, k):
    rng = np.random.default_rng(0)
    d = draw_without_replacement(rng, pool, k, 4000)
    assert d.shape == (4000, k)
    assert all(len(set(row)) == k for row in d.tolist())
    counts = np.bincount(d.ravel(), minlength=pool)
    expected = 4000 * k / pool
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected) + 1)
    with pytest.raises(ValueError):
        draw_without_replacement(rng, 3, 4, 1)


def test_set_scores_match_a_loop():
    rng = np.random.default_rng(1)
    r = rng.uniform(-1, 1, size=(5, 30))
    r[0, :4] = np.nan
    r[:, 7] = np.nan  # a gene undefined everywhere
    idx = np.array([[0, 1, 2, 3], [7, 8, 9, 10], [0, 7, 20, 29]])
    got = set_scores(r, idx)
    for s, row in enumerate(idx):
        per_wsi = [np.nanmean(r[w, row]) if np.isfinite(r[w, row]).any() else np.nan for w in range(5)]
        assert got[s] == pytest.approx(np.nanmean(per_wsi))


@pytest.fixture(scope="module")
def null_runs(cohort, tmp_path_factory):
    """Scores of the good model and of pure noise on 30 disjoint random sets + the planted ones."""
    d = tmp_path_factory.mktemp("null")
    truth = d / "truth.h5ad"
    cohort.truth.write_h5ad(truth)
    genes = list(cohort.truth.var_names)
    rng = np.random.default_rng(7)
    perm = rng.permutation(len(genes))
    sets = [
        GeneSet("random", f"R{k:02d}", tuple(genes[j] for j in perm[k * 20 : (k + 1) * 20]))
        for k in range(30)
    ]
    sets += [GeneSet("go", n, tuple(g)) for n, g in cohort.gene_sets["go"].items()]
    write_gmt(d / "random.gmt", [s for s in sets if s.collection == "random"])
    write_gmt(d / "go.gmt", [s for s in sets if s.collection == "go"])
    noise = cohort.truth.copy()
    noise.X = rng.standard_normal(noise.shape).astype(np.float32)
    if "truth" in noise.layers:
        del noise.layers["truth"]
    noise.write_h5ad(d / "noise.h5ad")
    for name in ("good", "partial"):
        cohort.predictions[name].write_h5ad(d / f"{name}.h5ad")
    pw = [str(d / "random.gmt"), str(d / "go.gmt")]
    out = {}
    for name, pred in (
        ("noise", d / "noise.h5ad"),
        ("good", d / "good.h5ad"),
        ("partial", d / "partial.h5ad"),
    ):
        out[name] = score(pred, truth, pathways=pw, checksum=False, out=d / f"run_{name}", min_genes=5).write(
            d / f"run_{name}", overwrite=True
        )
    return out


def test_observed_matches_run_and_noise_is_standard_normal(null_runs, cohort):
    from gpc_bench import load_run

    res = pathway_null(null_runs["noise"], n_draws=400, seed=0)
    t = res.table
    run = load_run(null_runs["noise"]).pathway_scores.set_index(["collection", "pathway"])
    for row in t.itertuples():
        assert row.gpc == pytest.approx(run.loc[(row.collection, row.pathway), "gpc"], abs=1e-12)
    z = t.loc[t["collection"] == "random", "z"].to_numpy()
    assert len(z) == 30
    # 30 disjoint sets, noise predictions: z ~ N(0, 1)
    assert abs(z.mean()) < 0.6 and 0.6 < z.std(ddof=1) < 1.45
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert res.info["n_draws"] == 400 and res.info["seed"] == 0


def test_planted_pathways_beat_the_null(null_runs, cohort):
    """The partial model recovers every other module: those pathways beat variance-matched genes
    (which include the modules it missed); the missed ones do not."""
    t = pathway_null(null_runs["partial"], n_draws=300, seed=0).table.set_index("pathway")
    planted = [p for p in cohort.recovered["partial"] if p in t.index]
    missed = [p for p in cohort.signal_pathways if p in t.index and p not in planted]
    assert planted and missed
    assert (t.loc[planted, "z"] > 3).all()
    assert (t.loc[planted, "p_empirical"] <= 2 / 301).all()
    assert (t.loc[missed, "z"] < 0).all()


def test_null_is_deterministic_and_written(null_runs, tmp_path):
    a = pathway_null(null_runs["good"], n_draws=50, seed=3)
    b = pathway_null(null_runs["good"], n_draws=50, seed=3)
    a.write(tmp_path / "a")
    b.write(tmp_path / "b")
    assert (tmp_path / "a" / "pathway_null.csv").read_bytes() == (
        tmp_path / "b" / "pathway_null.csv"
    ).read_bytes()
    c = pathway_null(null_runs["good"], n_draws=50, seed=4)
    assert not np.allclose(a.table["null_mean"].dropna(), c.table["null_mean"].dropna())
