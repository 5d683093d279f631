"""Control predictions: valid h5ad files, the intended content, and the expected scores."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import score_runs

from gpc_bench import InputError, score
from gpc_bench.cli import main
from gpc_bench.compare import leaderboard
from gpc_bench.controls import expected_noise_pcc, write_controls


@pytest.fixture(scope="module")
def controls(cohort_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("controls")
    res = CliRunner().invoke(
        main, ["-q", "controls", str(cohort_files["truth"]), "--out", str(out), "--snr", "1"]
    )
    assert res.exit_code == 0, res.output
    return {p.stem.removeprefix("control-"): p for p in out.glob("control-*.h5ad")}


def test_files_and_content(controls, cohort):
    assert set(controls) == {"shuffle", "type-mean", "noise-snr1", "depth"}
    truth = cohort.truth
    x = np.asarray(truth.X, dtype=np.float32)
    sid = truth.obs["sample_id"].astype(str).to_numpy()
    shuf = ad.read_h5ad(controls["shuffle"])
    assert shuf.uns["gpc_bench_control"] == "shuffle"
    pd.testing.assert_frame_equal(shuf.obs, truth.obs)
    assert np.array_equal(shuf.obsm["spatial"], truth.obsm["spatial"])
    for s in np.unique(sid):
        a, b = np.sort(shuf.X[sid == s], axis=0), np.sort(x[sid == s], axis=0)
        assert np.array_equal(a, b)  # a permutation of the WSI's spots
        assert not np.array_equal(shuf.X[sid == s], x[sid == s])
    tm = ad.read_h5ad(controls["type-mean"])
    means = pd.DataFrame(x.astype(np.float64)).groupby(truth.obs["cancer_type"].to_numpy()).mean()
    expect = means.loc[truth.obs["cancer_type"].to_numpy()].to_numpy()
    assert np.allclose(tm.X, expect, atol=1e-5)


def test_scores_of_controls(controls, cohort_files):
    shuf = score(
        controls["shuffle"], cohort_files["truth"], pathways=cohort_files["pathways"], checksum=False
    )
    assert shuf.summary["control"] == "shuffle"
    assert abs(shuf.headline["gpc_go"]) < 0.03 and abs(shuf.headline["gpc_hallmark"]) < 0.03
    tm = score(
        controls["type-mean"], cohort_files["truth"], pathways=cohort_files["pathways"], checksum=False
    )
    assert tm.headline["gpc_go"] == 0.0 and tm.headline["hvg_pcc_micro"] == 0.0
    nz = score(
        controls["noise-snr1"], cohort_files["truth"], pathways=cohort_files["pathways"], checksum=False
    )
    r = nz.gene_scores
    r = r[r["flag"] == "ok"]["pcc"]
    assert np.median(r) == pytest.approx(expected_noise_pcc(1.0), abs=0.03)


def test_depth_control_is_the_depth_baseline(controls, cohort, cohort_files):
    truth = cohort.truth
    x = np.asarray(truth.X, dtype=np.float32)
    dep = ad.read_h5ad(controls["depth"])
    assert dep.uns["gpc_bench_control"] == "depth"
    d = np.log1p((x > 0).sum(axis=1)).astype(np.float32)  # no total_counts: genes detected
    assert np.array_equal(dep.X, np.broadcast_to(d[:, None], x.shape))
    res = score(controls["depth"], cohort_files["truth"], pathways=cohort_files["pathways"], checksum=False)
    assert res.summary["depth"]["source"] == "genes_detected"
    gs = res.gene_scores
    ok = gs["flag"] == "ok"
    np.testing.assert_allclose(gs.loc[ok, "pcc"], gs.loc[ok, "r_depth"], atol=1e-6)
    assert (gs["r_depth_adjusted"].dropna() == 0.0).all()
    assert res.headline["gpc_depth_adjusted_go"] == 0.0


def test_leaderboard_marks_controls(controls, cohort_files, tmp_path):
    done = score_runs(cohort_files, tmp_path, {"good": cohort_files["good"], "shuffle": controls["shuffle"]})
    runs = list(done.values())
    t = leaderboard(runs, n_boot=0).table.set_index("model")
    assert (
        bool(t.loc["shuffle", "control"]) and pd.isna(t.loc["shuffle", "rank"]) and t.loc["good", "rank"] == 1
    )


def test_bad_arguments(cohort_files, tmp_path):
    with pytest.raises(InputError, match="positive"):
        write_controls(cohort_files["truth"], tmp_path, kinds=("noise",), snr=(0,))
    with pytest.raises(InputError, match="unknown control"):
        write_controls(cohort_files["truth"], tmp_path, kinds=("bogus",))
    with pytest.raises(InputError, match="not found"):
        write_controls(tmp_path / "missing.h5ad", tmp_path)
