"""Pathway activity (mean-z) and PAC against loops over pathways and spots, and planted patterns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr

from gpc_bench import score
from gpc_bench.io.gmt import GeneSet, write_gmt


def _activity_reference(x: np.ndarray, idx: list[int]) -> np.ndarray:
    """Per spot, the mean over the pathway's genes of the gene z-scored within the WSI (population
    SD), a constant gene contributing 0, written as a loop over genes."""
    out = np.zeros(x.shape[0])
    for g in idx:
        col = x[:, g].astype(np.float64)
        sd = col.std()
        if sd > 0:
            out += (col - col.mean()) / sd
    return out / len(idx)


def _gmt(tmp_path, sets: dict) -> str:
    write_gmt(tmp_path / "h.gmt", [GeneSet("hallmark", n, tuple(g)) for n, g in sets.items()])
    return str(tmp_path / "h.gmt")


@pytest.mark.parametrize("kernel", ["numpy", "numba"])
def test_pac_matches_a_loop_over_pathways_and_spots(cohort, cohort_files, kernel):
    from gpc_bench.settings import Settings

    if kernel == "numba":
        pytest.importorskip("numba", reason="the compiled kernels need numba")
    pred = cohort.predictions["noisy"]
    res = score(pred, cohort.truth, pathways=cohort_files["pathways"], checksum=False, activity=True,
                settings=Settings(kernel=kernel, block_bytes=1 << 16))  # fmt: skip
    assert res.run_info["kernel"].startswith(kernel)
    genes = list(pred.var_names)
    col = {g: j for j, g in enumerate(genes)}
    t = cohort.truth[pred.obs_names, genes]
    sid = pred.obs["sample_id"].to_numpy()
    pw = res.pathway_wsi_scores.set_index(["pathway", "sample_id"])["pac"]
    members = res.pathway_genes.groupby("pathway", observed=True)["gene"].apply(list)
    n = 0
    for name in list(members.index)[::7]:
        idx = [col[g] for g in members[name]]
        for s in sorted(set(sid))[:4]:
            x, y = np.asarray(t.X)[sid == s], np.asarray(pred.X)[sid == s]
            ax, ay = _activity_reference(x, idx), _activity_reference(y, idx)
            want = pearsonr(ax, ay)[0] if np.ptp(ax) > 0 and np.ptp(ay) > 0 else np.nan
            got = pw[(name, s)]
            if res.pathway_scores.set_index("pathway").loc[name, "status"] != "ok":
                assert np.isnan(got)
                continue
            assert got == pytest.approx(want, abs=1e-9), (name, s)
            n += 1
    assert n > 10
    ps = res.pathway_scores.set_index("pathway")
    one = list(members.index)[0]
    per = res.pathway_wsi_scores[res.pathway_wsi_scores["pathway"] == one]["pac"]
    assert ps.loc[one, "pac"] == pytest.approx(per.mean(), abs=1e-12)
    assert ps.loc[one, "pac_n_wsi"] == per.notna().sum()
    assert res.headline["pac_hallmark"] is not None


def _spatial_cohort(seed=0, n_side=12, n_genes=40, shuffle=False):
    """Two WSIs on a grid; genes 0-19 follow a smooth field across the tissue (a planted pathway),
    genes 20-39 are noise. The prediction has the right genes with their own noise; ``shuffle``
    moves its spots to random positions within each WSI."""
    import anndata as ad

    rng = np.random.default_rng(seed)
    rows = []
    for w in ("A", "B"):
        yy, xx = np.meshgrid(np.arange(n_side), np.arange(n_side), indexing="ij")
        field = np.sin(xx / 3.0) + np.cos(yy / 4.0)
        rows.append((w, xx.ravel(), yy.ravel(), field.ravel()))
    xs, ps, obs, coords = [], [], [], []
    for w, xx, yy, f in rows:
        n = len(f)
        depth = rng.normal(0, 0.2, n)
        x = rng.normal(0, 0.4, (n, n_genes)) + depth[:, None] + 2.0
        x[:, :20] += f[:, None]
        y = x + rng.normal(0, 1.5, x.shape)  # noisy genes, whose mean over a pathway is not
        if shuffle:
            y = y[rng.permutation(n)]
        xs.append(x)
        ps.append(y)
        obs.append(pd.DataFrame({"sample_id": w, "cancer_type": "T", "total_counts": np.exp(depth + 8)},
                                index=[f"{w}{a}x{b}" for a, b in zip(xx, yy, strict=True)]))  # fmt: skip
        coords.append(np.column_stack([xx, yy]).astype(float))
    var = pd.DataFrame(index=[f"G{j:02d}" for j in range(n_genes)])
    o = pd.concat(obs)
    truth = ad.AnnData(np.concatenate(xs).astype(np.float32), obs=o, var=var)
    truth.obsm["spatial"] = np.concatenate(coords)
    pred = ad.AnnData(np.concatenate(ps).astype(np.float32), obs=o.drop(columns="total_counts"), var=var)
    return pred, truth


def test_a_planted_pathway_has_high_pac_and_shuffled_positions_none(tmp_path):
    sets = {"SMOOTH": [f"G{j:02d}" for j in range(20)], "NOISE": [f"G{j:02d}" for j in range(20, 40)]}
    gmt = _gmt(tmp_path, sets)
    pred, truth = _spatial_cohort()
    res = score(pred, truth, pathways=gmt, min_genes=1, checksum=False, activity=True)
    ps = res.pathway_scores.set_index("pathway")
    assert ps.loc["SMOOTH", "pac"] > 0.9  # the activity map is reproduced
    assert ps.loc["SMOOTH", "pac"] > ps.loc["SMOOTH", "gpc"] + 0.2  # ... better than gene by gene
    shuffled, truth = _spatial_cohort(shuffle=True)
    res = score(shuffled, truth, pathways=gmt, min_genes=1, checksum=False, activity=True)
    assert abs(res.pathway_scores.set_index("pathway").loc["SMOOTH", "pac"]) < 0.2


def test_depth_adjusted_pac_is_the_partial_correlation_of_the_activities(tmp_path):
    sets = {"SMOOTH": [f"G{j:02d}" for j in range(20)]}
    pred, truth = _spatial_cohort(seed=3)
    res = score(pred, truth, pathways=_gmt(tmp_path, sets), min_genes=1, checksum=False, activity=True)
    pw = res.pathway_wsi_scores.set_index("sample_id")
    for s in ("A", "B"):
        sel = (truth.obs["sample_id"] == s).to_numpy()
        d = np.log1p(truth.obs["total_counts"].to_numpy()[sel])
        ax = _activity_reference(np.asarray(truth.X)[sel], list(range(20)))
        ay = _activity_reference(np.asarray(pred.X)[sel], list(range(20)))
        design = np.column_stack([np.ones_like(d), d])
        rx = ax - design @ np.linalg.lstsq(design, ax, rcond=None)[0]
        ry = ay - design @ np.linalg.lstsq(design, ay, rcond=None)[0]
        assert pw.loc[s, "pac_depth_adjusted"] == pytest.approx(pearsonr(rx, ry)[0], abs=1e-9)


def test_pac_is_not_computable_from_correlations(cohort, cohort_files):
    from gpc_bench.scoring_pcc import score_correlations

    full = score(
        cohort_files["noisy"], cohort_files["truth"], pathways=cohort_files["pathways"], checksum=False
    )
    res = score_correlations(
        full.gene_scores[["sample_id", "gene", "pcc"]], pathways=cohort_files["pathways"]
    )
    assert "pac" in res.summary["not_computable"] and res.headline["pac_hallmark"] is None
    assert res.pathway_scores["pac"].isna().all()


def test_the_leaderboard_takes_pac_from_the_declarations(cohort_files, tmp_path):
    from gpc_bench.compare import leaderboard

    kw = dict(pathways=cohort_files["pathways"], checksum=False, activity=True)
    a = score(cohort_files["good"], cohort_files["truth"], name="good", out=tmp_path / "a", **kw)
    b = score(cohort_files["noisy"], cohort_files["truth"], name="noisy", out=tmp_path / "b", **kw)
    lb = leaderboard([tmp_path / "a", tmp_path / "b"], n_boot=20).table.set_index("model")
    for res, m in ((a, "good"), (b, "noisy")):
        for c in ("hallmark", "go"):
            assert lb.loc[m, f"pac_{c}"] == pytest.approx(res.headline[f"pac_{c}"], abs=1e-12)
    assert lb.loc["good", "pac_go"] > lb.loc["noisy", "pac_go"]


def test_plot_gpc_vs_pac(cohort_files, tmp_path):
    from click.testing import CliRunner

    from gpc_bench.cli import main

    score(cohort_files["good"], cohort_files["truth"], pathways=cohort_files["pathways"], checksum=False,
          activity=True, out=tmp_path / "run")  # fmt: skip
    res = CliRunner().invoke(
        main, ["plot", "gpc-vs-pac", str(tmp_path / "run"), "--out", str(tmp_path / "f.svg")]
    )
    assert res.exit_code == 0, res.output
    svg = (tmp_path / "f.svg").read_text()
    assert 'id="points-hallmark"' in svg and 'id="annotation-go"' in svg
