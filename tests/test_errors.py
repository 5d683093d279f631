"""Bad input: a clear error naming the problem, with a hint, and no partial output."""

from __future__ import annotations

import numpy as np
import pytest

from gpc_bench import InputError, score


def run(cohort_files, pred, truth=None, tmp_path=None, **kw):
    out = tmp_path / "run" if tmp_path is not None else None
    return score(
        pred,
        truth if truth is not None else cohort_files["truth"],
        pathways=cohort_files["pathways"],
        out=out,
        **kw,
    )


def test_missing_sample_id(cohort, cohort_files, tmp_path):
    pred = cohort.predictions["good"].copy()
    del pred.obs["sample_id"]
    with pytest.raises(InputError, match=r"no obs\['sample_id'\]") as err:
        run(cohort_files, pred, tmp_path=tmp_path)
    assert "hint" in str(err.value)
    assert not (tmp_path / "run").exists()


def test_misaligned_spots_counts(cohort, cohort_files, tmp_path):
    pred = cohort.predictions["good"][10:].copy()
    with pytest.raises(
        InputError,
        match=r"295 of 295 prediction spots have a measured spot, and 10 of 305 truth spots have no",
    ):
        run(cohort_files, pred, tmp_path=tmp_path)
    pred = cohort.predictions["good"].copy()
    pred.obs_names = [f"x{i}" for i in range(pred.n_obs)]
    with pytest.raises(InputError, match=r"spots do not align: 0 of 305"):
        run(cohort_files, pred, tmp_path=tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.filterwarnings("ignore:Observation names are not unique")
def test_a_spot_listed_twice_is_refused_in_either_file(cohort, cohort_files, tmp_path):
    truth = cohort.truth.copy()
    names = truth.obs_names.tolist()
    names[5] = names[4]  # the same barcode twice in one sample
    truth.obs_names = names
    sample = truth.obs["sample_id"].iloc[4]
    twice = rf"truth file: spot '{names[4]}' appears twice in sample '{sample}'"
    with pytest.raises(InputError, match=twice):
        run(cohort_files, cohort.predictions["good"], truth, tmp_path=tmp_path)
    pred = truth.copy()
    pred.layers["truth"] = truth.X.copy()
    with pytest.raises(InputError, match=rf"predictions: spot '{names[4]}' appears twice"):
        score(pred, None, pathways=cohort_files["pathways"], out=tmp_path / "run")
    assert not list(tmp_path.iterdir())


def test_no_shared_genes_shows_both_styles(cohort, cohort_files, tmp_path):
    pred = cohort.predictions["good"].copy()
    pred.var_names = [f"ENSG{i:011d}" for i in range(pred.n_vars)]
    with pytest.raises(
        InputError, match=r"no shared genes.*ENSG00000000000.*ensembl IDs.*G00000.*symbol IDs"
    ):
        run(cohort_files, pred, tmp_path=tmp_path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_predictions(cohort, cohort_files, tmp_path, bad):
    pred = cohort.predictions["good"].copy()
    pred.X[40, 7] = bad
    sample = pred.obs.sample_id.iloc[40]
    with pytest.raises(
        InputError, match=rf"NaN or infinite value in predictions for sample '{sample}', gene 'G00007'"
    ):
        run(cohort_files, pred, tmp_path=tmp_path)
    assert not list(tmp_path.iterdir())


def test_negative_counts_under_log1p(cohort, cohort_files, tmp_path):
    truth = cohort.truth.copy()
    truth.X[0, 3] = -5
    with pytest.raises(InputError, match="negative values give NaN under --truth-log1p"):
        run(cohort_files, cohort.predictions["good"], truth, truth_log1p=True)


def test_corrupt_and_missing_files(cohort_files, tmp_path):
    bad = tmp_path / "bad.h5ad"
    bad.write_bytes(b"this is not hdf5")
    with pytest.raises(InputError, match="not a readable .h5ad"):
        run(cohort_files, bad)
    half = tmp_path / "half.h5ad"
    half.write_bytes(cohort_files["good"].read_bytes()[:5000])
    with pytest.raises(InputError, match="not a readable .h5ad"):
        run(cohort_files, half)
    with pytest.raises(InputError, match="predictions file not found"):
        run(cohort_files, tmp_path / "nope.h5ad")
    import h5py

    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(InputError, match="no 'obs' element"):
        run(cohort_files, tmp_path / "plain.h5")


def test_no_truth_given(cohort_files):
    with pytest.raises(InputError, match=r"no layers\['truth'\] and no --truth"):
        score(cohort_files["good"], pathways=cohort_files["pathways"])


def test_pathways_without_usable_sets(cohort_files, tmp_path):
    gmt = tmp_path / "x.gmt"
    gmt.write_text("SET_A\tdesc\tTP53\tEGFR\nSET_B\tdesc\tMYC\n")
    with pytest.raises(InputError, match="none of the 2 pathways has a gene in the panel"):
        score(cohort_files["good"], cohort_files["truth"], pathways=gmt)
    empty = tmp_path / "empty.gmt"
    empty.write_text("\n")
    with pytest.raises(InputError, match="hold no gene sets"):
        score(cohort_files["good"], cohort_files["truth"], pathways=empty)


def test_multiple_cancer_types_in_one_wsi(cohort, cohort_files):
    pred = cohort.predictions["good"].copy()
    ct = pred.obs.cancer_type.astype(str).to_numpy()
    ct[0] = "LUAD" if ct[0] != "LUAD" else "BRCA"
    pred.obs["cancer_type"] = ct
    with pytest.raises(InputError, match="several cancer types"):
        run(cohort_files, pred)


def test_existing_output_needs_overwrite(cohort_files, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="already exists"):
        run(cohort_files, cohort_files["good"], tmp_path=tmp_path)
    assert (out / "keep.txt").exists()
    with pytest.raises(InputError, match="replaces only a gpc-bench run folder"):  # not ours
        run(cohort_files, cohort_files["good"], tmp_path=tmp_path, overwrite=True)
    assert (out / "keep.txt").read_text() == "x"
    (out / "keep.txt").unlink()
    run(cohort_files, cohort_files["good"], tmp_path=tmp_path)
    (out / "extra.txt").write_text("y")  # a run folder (with a note added) may be replaced
    run(cohort_files, cohort_files["good"], tmp_path=tmp_path, overwrite=True)
    assert not (out / "extra.txt").exists() and (out / "summary.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary folders left


def test_csc_matrix_is_refused(cohort, tmp_path):
    import scipy.sparse as sp

    pred = cohort.predictions["good"].copy()
    pred.X = sp.csc_matrix(pred.X)
    pred.layers["truth"] = sp.csr_matrix(cohort.truth.X)
    f = tmp_path / "csc.h5ad"
    pred.write_h5ad(f)
    with pytest.raises(InputError, match="CSC sparse matrix"):
        score(f, pathways=tmp_path)
