"""Comparable by construction: the leaderboard refuses unfair comparisons; --intersect recomputes."""

from __future__ import annotations

import numpy as np
import pytest

from gpc_bench import InputError, score
from gpc_bench.compare import leaderboard


@pytest.fixture(scope="module")
def base(cohort_files, tmp_path_factory):
    d = tmp_path_factory.mktemp("cmp")
    kw = dict(pathways=cohort_files["pathways"], checksum=False, min_genes=5)
    score(cohort_files["good"], cohort_files["truth"], name="full", out=d / "full", **kw)
    return d, kw


def test_a_gene_subset_is_refused_and_intersect_recomputes_identically(cohort, cohort_files, base, tmp_path):
    d, kw = base
    pred = cohort.predictions["good"]
    keep = np.sort(np.random.default_rng(0).choice(pred.n_vars, 400, replace=False))
    score(pred[:, keep].copy(), cohort_files["truth"], name="subset", out=tmp_path / "subset", **kw)
    runs = [d / "full", tmp_path / "subset"]
    with pytest.raises(
        InputError, match=r"different gene panels \(full: 600 genes, subset: 400 genes; 400 shared\)"
    ):
        leaderboard(runs, n_boot=0)
    lb = leaderboard(runs, reference="full", n_boot=50, intersect=True)
    t = lb.table.set_index("model")
    for col in (
        "hvg_pcc_macro",
        "hvg_pcc_micro",
        "gpc_hallmark",
        "gpc_go",
        *[f"gpc_level_{k}" for k in range(1, 11)],
    ):
        a, b = t.loc["full", col], t.loc["subset", col]
        assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, abs=1e-12), col
    assert t.loc["subset", "win_rate_hallmark"] == 0 and t.loc["subset", "tie_rate_hallmark"] == 1
    assert t.loc["subset", "tie_rate_go"] == 1
    comp = lb.comparison
    assert (comp["difference"].abs().fillna(0) < 1e-12).all()
    assert any("400 genes shared" in n for n in lb.info["notes"])
    # and the recomputed full run is not the recorded one: the panel changed every score
    full = leaderboard([d / "full"], n_boot=0).table.set_index("model")
    assert abs(full.loc["full", "gpc_go"] - t.loc["full", "gpc_go"]) > 1e-6


@pytest.mark.parametrize(
    "option, value, named",
    [
        ("hvg", "20", r"different hvg .*--hvg"),
        ("constant_prediction", "exclude", r"different constant_prediction .*--constant-prediction"),
        ("min_genes", 3, r"different min_genes .*--min-genes"),
        ("n_levels", 7, r"different n_levels .*--levels"),
    ],
)
def test_different_options_are_refused(cohort_files, base, tmp_path, option, value, named):
    d, kw = base
    score(
        cohort_files["noisy"],
        cohort_files["truth"],
        name="other",
        out=tmp_path / "o",
        **(kw | {option: value}),
    )
    with pytest.raises(InputError, match=named):
        leaderboard([d / "full", tmp_path / "o"], n_boot=0)
    with pytest.raises(InputError, match=named):  # --intersect cannot reconcile options
        leaderboard([d / "full", tmp_path / "o"], n_boot=0, intersect=True)


def test_a_different_truth_is_refused(cohort, cohort_files, base, tmp_path):
    d, kw = base
    truth = cohort.truth.copy()
    truth.X[:5] = truth.X[:5] + 1.0  # five spots measured differently
    score(cohort_files["noisy"], truth, name="other", out=tmp_path / "o", **kw)
    with pytest.raises(InputError, match=r"different measured expression .*WSI 'WSI00_BRCA'.*--truth"):
        leaderboard([d / "full", tmp_path / "o"], n_boot=0)


def test_a_different_collection_is_refused(cohort, cohort_files, base, tmp_path):
    from gpc_bench.io.gmt import GeneSet, write_gmt

    d, kw = base
    sets = cohort.gene_sets["hallmark"]
    write_gmt(tmp_path / "h.gmt", [GeneSet("hallmark", n, tuple(g)) for n, g in sets.items()])
    score(cohort_files["noisy"], cohort_files["truth"], name="other", out=tmp_path / "o",
          **(kw | {"pathways": tmp_path / "h.gmt"}))  # fmt: skip
    with pytest.raises(InputError, match="different pathway collections"):
        leaderboard([d / "full", tmp_path / "o"], n_boot=0)


def test_figures_refuse_incomparable_runs(cohort_files, base, tmp_path):
    from gpc_bench.plot import levels, scatter

    d, kw = base
    score(
        cohort_files["noisy"],
        cohort_files["truth"],
        name="other",
        out=tmp_path / "o",
        **(kw | {"min_genes": 3}),
    )
    for draw in (lambda: scatter(d / "full", tmp_path / "o"), lambda: levels([d / "full", tmp_path / "o"])):
        with pytest.raises(InputError, match="different min_genes"):
            draw()


@pytest.fixture(scope="module")
def real_genes(cohort):
    """The cohort renamed to real genes: truth and pathways as symbols, and the (Ensembl, symbol)
    pairs of the shipped table, so that a prediction can be keyed either way."""
    from gpc_bench.genes import ensembl_to_symbol

    pairs = {}
    for ens, sym in sorted(ensembl_to_symbol().items()):
        if sym not in pairs.values() and sym.isalnum():
            pairs[ens] = sym
        if len(pairs) == cohort.truth.n_vars:
            break
    ens, sym = list(pairs), list(pairs.values())
    rename = dict(zip(cohort.truth.var_names, sym, strict=True))
    return ens, sym, rename


def test_intersect_shares_genes_of_ensembl_and_symbol_runs(cohort, real_genes, tmp_path):
    from gpc_bench.io.gmt import GeneSet, write_gmt

    ens, sym, rename = real_genes
    truth = cohort.truth.copy()
    truth.var_names = sym
    p_sym = cohort.predictions["good"].copy()
    p_sym.var_names = sym
    p_ens = cohort.predictions["noisy"].copy()
    p_ens.var_names = ens
    (tmp_path / "pw").mkdir()
    for coll, sets in cohort.gene_sets.items():
        renamed = [GeneSet(coll, n, tuple(rename.get(g, g) for g in gs)) for n, gs in sets.items()]
        write_gmt(tmp_path / "pw" / f"{coll}.gmt", renamed)
    kw = dict(pathways=tmp_path / "pw", checksum=False)
    score(p_sym, truth, name="sym", out=tmp_path / "sym", **kw)
    score(p_ens, truth, name="ens", out=tmp_path / "ens", **kw)
    # the same truth and panel, keyed two ways: comparable as they are, and with --intersect
    lb = leaderboard([tmp_path / "sym", tmp_path / "ens"], n_boot=0)
    lbi = leaderboard([tmp_path / "sym", tmp_path / "ens"], n_boot=0, intersect=True)
    for m in ("sym", "ens"):
        a = lb.table.set_index("model").loc[m, ["gpc_hallmark", "gpc_go", "hvg_pcc_macro"]]
        b = lbi.table.set_index("model").loc[m, ["gpc_hallmark", "gpc_go", "hvg_pcc_macro"]]
        np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), atol=1e-12)


def test_truth_normalised_two_ways_is_the_same_truth(cohort, cohort_files, tmp_path):
    import anndata as ad

    counts = np.rint(np.expm1(np.asarray(cohort.truth.X, dtype=np.float64))).astype(np.float32)
    raw = ad.AnnData(counts, obs=cohort.truth.obs.copy(), var=cohort.truth.var.copy())
    lib = counts.sum(1, keepdims=True, dtype=np.float32)
    done = ad.AnnData(np.log1p(counts / lib * np.float32(1e4)).astype(np.float32),
                      obs=cohort.truth.obs.copy(), var=cohort.truth.var.copy())  # fmt: skip
    kw = dict(pathways=cohort_files["pathways"], checksum=False)
    score(cohort_files["good"], raw, name="a", out=tmp_path / "a", truth_normalize=1e4, **kw)
    score(cohort_files["noisy"], done, name="b", out=tmp_path / "b", **kw)
    lb = leaderboard([tmp_path / "a", tmp_path / "b"], n_boot=0)  # not refused over rounding
    assert set(lb.table["model"]) == {"a", "b", "depth baseline (truth)"}
    shifted = done.copy()
    shifted.X = shifted.X * np.float32(1.001)  # a real difference is still refused, with digits
    score(cohort_files["noisy"], shifted, name="c", out=tmp_path / "c", **kw)
    with pytest.raises(InputError, match=r"relative difference 1\.0e-03") as err:
        leaderboard([tmp_path / "a", tmp_path / "c"], n_boot=0)
    assert "intersect" not in str(err.value).split("hint")[0].split("measured expression")[1].split("\n")[0]


def test_every_incompatibility_at_once_with_its_remedy(cohort, cohort_files, base, tmp_path):
    from gpc_bench.io.gmt import GeneSet, write_gmt

    d, kw = base
    sets = cohort.gene_sets["hallmark"]
    write_gmt(tmp_path / "h.gmt", [GeneSet("hallmark", n, tuple(g)) for n, g in sets.items()])
    keep = (cohort.truth.obs["sample_id"] != "WSI00_BRCA").to_numpy()
    sub, tsub = cohort.predictions["noisy"][keep].copy(), cohort.truth[keep].copy()
    score(sub, tsub, name="other", out=tmp_path / "o",
          **(kw | {"pathways": tmp_path / "h.gmt", "min_genes": 3, "cluster": "wsi"}))  # fmt: skip
    with pytest.raises(InputError) as err:
        leaderboard([d / "full", tmp_path / "o"], n_boot=0)
    text = str(err.value)
    for part in ("different pathway collections", "different min_genes", "different cluster",
                 "different WSI sets"):  # fmt: skip
        assert part in text, part
    assert "full: none, other: wsi" in text  # values as typed, not Python's None
    lines = text.split("\n  - ")[1:]
    assert "--intersect" not in next(x for x in lines if "min_genes" in x)
    assert "--intersect" in next(x for x in lines if "WSI sets" in x)


def test_figures_name_the_commands_that_intersect(cohort, cohort_files, base, tmp_path):
    from gpc_bench.plot import scatter

    d, kw = base
    keep = (cohort.truth.obs["sample_id"] != "WSI00_BRCA").to_numpy()
    sub, tsub = cohort.predictions["noisy"][keep].copy(), cohort.truth[keep].copy()
    score(sub, tsub, name="other", out=tmp_path / "o", **kw)
    with pytest.raises(InputError, match="leaderboard --intersect") as err:
        scatter(d / "full", tmp_path / "o")
    assert "or pass --intersect" not in str(err.value)


def test_small_cohorts_test_over_wsis_and_say_the_smallest_p(cohort_files, base, tmp_path):
    from gpc_bench.compare.leaderboard import smallest_p

    assert smallest_p(10) == pytest.approx(0.001953125)
    d, kw = base
    score(cohort_files["noisy"], cohort_files["truth"], name="noisy", out=tmp_path / "n", **kw)
    lb = leaderboard([d / "full", tmp_path / "n"], reference="full", n_boot=200)
    n_wsi = len(lb.info["wsis"])
    p = lb.table.set_index("model").loc["noisy", "wilcoxon_p_go"]
    assert p >= smallest_p(n_wsi) - 1e-15  # paired over WSIs: never the 1e-69 of a test over pathways
    assert any(f"the smallest p they can give is {smallest_p(n_wsi):.3g}" in n for n in lb.info["notes"])
    # two WSIs: no intervals at all
    from gpc_bench.compare.runs import load_runs

    rs = load_runs([d / "full", tmp_path / "n"])
    keep = [0, 1]
    rs.wsis = [rs.wsis[k] for k in keep]
    rs.cancer_types = [rs.cancer_types[k] for k in keep]
    for m in rs.models:
        rs.scores[m] = rs.scores[m][:, keep]
        rs.hvg[m] = rs.hvg[m][keep]
        rs.wsi_values[m] = {k: v[keep] for k, v in rs.wsi_values[m].items()}
        variants = rs.variants[m].items()
        rs.variants[m] = {k: (s[:, keep], None if h is None else h[keep]) for k, (s, h) in variants}
    lb2 = leaderboard(rs, reference="full", n_boot=200)
    assert lb2.long["ci_low"].isna().all()
    assert any("no bootstrap intervals" in n for n in lb2.info["notes"])


def test_hvg_lists_compare_by_content_not_by_path(cohort, cohort_files, base, tmp_path):
    import json

    d, kw = base
    genes = [str(g) for g in cohort.predictions["good"].var_names[:50]]
    for name in ("a", "b"):  # the same list in two folders
        (tmp_path / name).mkdir()
        (tmp_path / name / "hvg.json").write_text(json.dumps({"genes": genes}))
        score(cohort_files["good"], cohort_files["truth"], name=name, hvg=str(tmp_path / name / "hvg.json"),
              out=tmp_path / f"run_{name}", **kw)  # fmt: skip
    lb = leaderboard([tmp_path / "run_a", tmp_path / "run_b"], n_boot=0)
    assert set(lb.table["model"]) >= {"a", "b"}
    (tmp_path / "b" / "hvg.json").write_text(json.dumps({"genes": genes[1:]}))  # different content
    score(cohort_files["good"], cohort_files["truth"], name="c", hvg=str(tmp_path / "b" / "hvg.json"),
          out=tmp_path / "run_c", **kw)  # fmt: skip
    with pytest.raises(InputError, match="different hvg"):
        leaderboard([tmp_path / "run_a", tmp_path / "run_c"], n_boot=0)
