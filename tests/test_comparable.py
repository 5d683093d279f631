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
