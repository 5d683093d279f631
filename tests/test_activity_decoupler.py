"""``--activity ulm|aucell``: PAC from decoupler's activity maps, checked against decoupler itself."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr
from test_activity import _gmt, _spatial_cohort

from gpc_bench import InputError, score

SETS = {
    "SMOOTH": [f"G{j:02d}" for j in range(20)],
    "MIXED": [f"G{j:02d}" for j in range(10, 30)],
    "NOISE": [f"G{j:02d}" for j in range(20, 40)],
}


def _decoupler_scores(method: str, x: np.ndarray, genes) -> pd.DataFrame:
    """decoupler on one WSI as a user would call it: an AnnData, the net in gene names."""
    import anndata as ad
    import decoupler as dc

    a = ad.AnnData(x.astype(np.float32), var=pd.DataFrame(index=list(genes)))
    a.obs_names = [f"spot{i}" for i in range(a.n_obs)]
    net = pd.DataFrame([(s, g) for s, gs in SETS.items() for g in gs], columns=["source", "target"])
    getattr(dc.mt, method)(a, net, tmin=1, empty=False)
    return a.obsm[f"score_{method}"]


@pytest.mark.parametrize("method", ["ulm", "aucell"])
def test_pac_of_decoupler_activities_matches_decoupler_itself(tmp_path, method):
    pytest.importorskip("decoupler")
    pred, truth = _spatial_cohort(seed=1)
    res = score(pred, truth, pathways=_gmt(tmp_path, SETS), min_genes=1, checksum=False, activity=method)
    assert res.summary["config"]["activity"] == method
    pw = res.pathway_wsi_scores.set_index(["sample_id", "pathway"])
    sid = truth.obs["sample_id"].to_numpy()
    for s in ("A", "B"):
        sel = sid == s
        at = _decoupler_scores(method, np.asarray(truth.X)[sel], truth.var_names)
        ap = _decoupler_scores(method, np.asarray(pred.X)[sel], truth.var_names)
        for p in SETS:
            want = pearsonr(at[p].to_numpy(), ap[p].to_numpy())[0]
            assert pw.loc[(s, p), "pac"] == pytest.approx(want, abs=1e-6), (s, p)
    assert res.pathway_scores.set_index("pathway").loc["SMOOTH", "pac"] > 0.3  # the planted map


def test_decoupler_methods_say_which_extra_is_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "decoupler", None)  # as if not installed
    pred, truth = _spatial_cohort()
    with pytest.raises(InputError, match="needs decoupler") as err:
        score(pred, truth, pathways=_gmt(tmp_path, SETS), min_genes=1, checksum=False, activity="ulm")
    assert "gpc-bench[activity]" in err.value.hint


def test_activity_options_are_spelled_one_way():
    from gpc_bench.config import ScoreConfig

    assert ScoreConfig.from_dict({"activity": True}).activity == "mean-z"  # runs recorded before the methods
    assert ScoreConfig.from_dict({"activity": False}).activity is None
    assert ScoreConfig(activity="ulm").to_dict()["activity"] == "ulm"
    with pytest.raises(InputError, match="activity must be"):
        ScoreConfig(activity="gsva")
