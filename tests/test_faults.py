"""Faults: damaged files, inputs changed mid-run, bad option values and Ctrl-C are clean refusals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from gpc_bench import InputError, score
from gpc_bench.cli import main


def _cli(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    return res


def _clean_refusal(res, text):
    assert res.exit_code == 2, res.output
    assert text in res.output, res.output
    assert "Traceback" not in res.output


# --------------------------------------------------------------------------- damaged matrices
def test_x_with_fewer_columns_than_var_is_refused(cohort, tmp_path):
    f = tmp_path / "short.h5ad"
    cohort.predictions["good"].write_h5ad(f)
    with h5py.File(f, "r+") as h:
        x = h["X"][:, :-50]
        attrs = dict(h["X"].attrs)
        del h["X"]
        h["X"] = x
        h["X"].attrs.update(attrs)
    for kernel in ("numba", "numpy"):
        os.environ["GPC_BENCH_KERNEL"] = kernel
        try:
            with pytest.raises(InputError, match=r"X is 305 x 550 but obs has 305 rows and var 600"):
                score(f, cohort.truth, checksum=False)
        finally:
            os.environ.pop("GPC_BENCH_KERNEL")


def _short_indptr(g):
    data = g["indptr"][:-5]
    del g["indptr"]
    g["indptr"] = data


def _index_out_of_range(g):
    g["indices"][3] = 10_000


def _indptr_end(g):
    g["indptr"][-1] = 1


@pytest.mark.parametrize(
    "damage, message",
    [
        (_short_indptr, r"indptr has 301 entries, not n_obs \+ 1 = 306"),
        (_index_out_of_range, "column index of rows .* outside 0-599"),
        (_indptr_end, "indptr does not rise from 0|indptr ends at"),
    ],
    ids=["short-indptr", "index-out-of-range", "indptr-end"],
)
def test_corrupt_csr_is_refused(cohort, cohort_files, tmp_path, damage, message):
    import scipy.sparse as sp

    pred = cohort.predictions["good"].copy()
    pred.X = sp.csr_matrix(np.where(pred.X > 1, pred.X, 0))
    f = tmp_path / "csr.h5ad"
    pred.write_h5ad(f)
    with h5py.File(f, "r+") as h:
        damage(h["X"])
    with pytest.raises(InputError, match=message):
        score(f, cohort_files["truth"], pathways=cohort_files["pathways"], checksum=False)


def test_truth_changed_while_scoring_is_refused(cohort_files, tmp_path, monkeypatch):
    import shutil

    import gpc_bench.scoring as scoring

    truth = tmp_path / "truth.h5ad"
    shutil.copy(cohort_files["truth"], truth)
    real = scoring.score_wsis

    def and_then_truncate(*a, **k):
        out = real(*a, **k)
        with open(truth, "r+b") as f:  # another process still writing it, or a copy cut short
            f.truncate(os.path.getsize(truth) - 100)
        return out

    monkeypatch.setattr(scoring, "score_wsis", and_then_truncate)
    with pytest.raises(InputError, match="changed while it was being scored"):
        score(cohort_files["good"], truth, pathways=cohort_files["pathways"], out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_gmt_with_a_byte_order_mark(tmp_path):
    from gpc_bench.io.gmt import load_pathways

    text = "HALLMARK_A\tna\tG1\tG2\nHALLMARK_B\tna\tG3\n"
    (tmp_path / "plain").mkdir()
    (tmp_path / "bom").mkdir()
    (tmp_path / "plain" / "h.gmt").write_text(text, encoding="utf-8")
    (tmp_path / "bom" / "h.gmt").write_bytes(b"\xef\xbb\xbf" + text.encode())
    a, b = load_pathways(tmp_path / "plain" / "h.gmt"), load_pathways(tmp_path / "bom" / "h.gmt")
    assert [s.name for s in b.sets] == ["HALLMARK_A", "HALLMARK_B"]
    assert a.collection_id == b.collection_id


def test_a_pickle_as_pathways_points_to_import(cohort_files, tmp_path):
    (tmp_path / "final_GO_genes.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(InputError, match="pathways import histoprism"):
        score(cohort_files["good"], cohort_files["truth"], pathways=tmp_path / "final_GO_genes.pkl")


# --------------------------------------------------------------------------- option values
@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not a readable JSON file"),
        ("[1, 2]", "holds list, not a JSON object"),
        ("null", "holds null, not a JSON object"),
        ('{"min_genes": "ten"}', "config field min_genes must be int, not 'ten'"),
        ('{"seed": -4}', "seed must be between 0 and 2**32 - 1"),
        ('{"truth_log1p": "yes"}', "config field truth_log1p must be bool"),
        ('{"config": {"bogus": 1}}', "unknown score config key(s) ['bogus']"),
    ],
)
def test_config_files_of_any_shape(cohort_files, tmp_path, content, message):
    (tmp_path / "c.json").write_text(content)
    args = ["--config", tmp_path / "c.json", "--out", tmp_path / "run"]
    res = _cli("score", cohort_files["good"], "--truth", cohort_files["truth"], *args)
    _clean_refusal(res, message)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "flag, value", [("--threads", 0), ("--threads", -3), ("--seed", -1), ("--seed", 2**32), ("--levels", 0)]
)
def test_out_of_range_option_values(cohort_files, tmp_path, flag, value):
    res = _cli("score", cohort_files["good"], "--truth", cohort_files["truth"], flag, value,
               "--out", tmp_path / "run")  # fmt: skip
    assert res.exit_code == 2 and "is not in the range" in res.output and "None" not in res.output


# --------------------------------------------------------------------------- damaged run folders
def _damaged(scored_runs, tmp_path, what):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(scored_runs["noisy"], run)
    if what == "summary":
        (run / "summary.json").write_text('{"model": "noisy", "headline": ')
    elif what == "parquet":
        data = (run / "gene_scores.parquet").read_bytes()
        (run / "gene_scores.parquet").write_bytes(data[: len(data) // 2])
    elif what == "csv":
        for name in ("pathway_wsi_scores.csv", "pathway_scores.csv", "gene_variance.csv"):
            (run / name).write_bytes(b"\x00\x01garbage\nno,columns\n")
    return run


@pytest.mark.parametrize("what", ["summary", "parquet", "csv"])
@pytest.mark.parametrize("command", ["leaderboard", "report", "null", "plot"])
def test_damaged_run_folders_are_clean_errors(scored_runs, tmp_path, what, command):
    bad = _damaged(scored_runs, tmp_path, what)
    good = scored_runs["good"]
    args = {
        "leaderboard": ["leaderboard", good, bad, "--bootstrap", 0, "--intersect"],
        "report": ["report", good, bad, "--bootstrap", 0, "--out", tmp_path / "r.html", "--intersect"],
        "null": ["null", bad, "--draws", 10, "--out", tmp_path / "nullout"],
        "plot": ["plot", "scatter", bad, good, "--out", tmp_path / "f.png"],
    }[command]
    res = _cli(*args)
    if what == "parquet" and command in ("plot", "null", "leaderboard", "report"):
        # only --intersect reads the gene-level tables: the others may succeed without them
        if res.exit_code == 0:
            return
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "run" in res.output and (
        "damaged" in res.output
        or "cannot be read" in res.output
        or "not valid JSON" in res.output
        or "lacks" in res.output
    ), res.output
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "f.png").exists()


def test_checkpoint_with_unknown_config_key(tmp_path):
    torch = pytest.importorskip("torch", reason="checkpoints need the [model] extra")
    from gpc_bench.baselines.histoprism.train import CHECKPOINT_FORMAT, load_checkpoint

    torch.save({"format": CHECKPOINT_FORMAT, "model_config": {"n_genes": 3, "warp_drive": 1},
                "state_dict": {}}, tmp_path / "c.pt")  # fmt: skip
    with pytest.raises(InputError, match=r"unknown key\(s\) \['warp_drive'\]"):
        load_checkpoint(tmp_path / "c.pt")


# --------------------------------------------------------------------------- Ctrl-C
def _interrupt_after(args, delay, cwd):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "gpc_bench", *map(str, args)], cwd=cwd, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    return p.returncode, out + err


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_exits_130_with_one_line_and_leaves_nothing(cohort_files, tmp_path):
    args = ["score", cohort_files["good"], "--truth", cohort_files["truth"], "--pathways",
            cohort_files["pathways"], "--out", tmp_path / "out" / "run", "--cluster", "spot"]  # fmt: skip
    codes = []
    for delay in (0.25, 0.4, 0.6, 0.9, 1.3, 1.8):  # after the interpreter has started
        rc, text = _interrupt_after(args, delay, tmp_path)
        codes.append(rc)
        if rc == 0:  # finished before the signal: its output is complete
            assert (tmp_path / "out" / "run" / "summary.json").is_file()
            import shutil

            shutil.rmtree(tmp_path / "out" / "run")
            continue
        assert rc == 130, text
        assert "Traceback" not in text and "Aborted" not in text, text
        assert text.strip().splitlines()[-1] == "gpc-bench: interrupted", text
        leftovers = list((tmp_path / "out").iterdir()) if (tmp_path / "out").exists() else []
        assert leftovers == [], leftovers
    assert 130 in codes


def test_a_swallowed_interrupt_commits_nothing(tmp_path, monkeypatch):
    from gpc_bench import _entry
    from gpc_bench.io.runfolder import atomic_dir

    monkeypatch.setattr(_entry, "_INTERRUPTS", [1])  # Ctrl-C came, and a library caught it
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(tmp_path / "run") as tmp:
            (tmp / "x").write_text("y")
    assert list(tmp_path.iterdir()) == []


def test_console_entry_point_and_exit_codes(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "gpc_bench", *args], capture_output=True, text=True)

    r = cli("--version")
    assert r.returncode == 0 and "gpc-bench, version" in r.stdout
    r = cli("score")
    assert r.returncode == 2 and "Missing argument" in r.stderr
    r = cli("score", "missing.h5ad", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr


def test_speed_settings_move_numbers_by_rounding_only(cohort_files, monkeypatch):
    """The README's promise: kernels and block sizes agree to floating-point rounding."""
    pytest.importorskip("numba", reason="one kernel only without numba")
    kw = dict(pathways=cohort_files["pathways"], checksum=False)
    runs = {}
    for kernel, block in (("numba", "64"), ("numpy", "64"), ("numpy", "1"), ("numba", "1")):
        monkeypatch.setenv("GPC_BENCH_KERNEL", kernel)
        monkeypatch.setenv("GPC_BENCH_BLOCK_MB", block)
        runs[kernel, block] = score(cohort_files["noisy"], cohort_files["truth"], **kw)
    ref = runs["numba", "64"]
    for key, res in runs.items():
        d = np.abs(res.gene_scores["pcc"].to_numpy() - ref.gene_scores["pcc"].to_numpy())
        assert np.nanmax(d) < 1e-13, key
        np.testing.assert_array_equal(np.isnan(res.gene_scores["pcc"]), np.isnan(ref.gene_scores["pcc"]))
        g = np.abs(res.pathway_scores["gpc"].to_numpy() - ref.pathway_scores["gpc"].to_numpy())
        assert np.nanmax(g) < 1e-13, key


def test_control_files_chunk_whole_rows(cohort_files, tmp_path):
    from gpc_bench.controls import write_controls

    (path,) = write_controls(cohort_files["truth"], tmp_path, kinds=("shuffle",))
    with h5py.File(path, "r") as f:
        n_obs, n_vars = f["X"].shape
        chunks = f["X"].chunks
    assert chunks[1] == n_vars and chunks[0] <= n_obs  # no padded gene axis


def test_repeated_barcodes_across_wsis_read_without_a_warning(cohort, tmp_path):
    import warnings

    from gpc_bench.io.h5ad import read_anndata

    a = cohort.truth.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.obs_names = [n.split(":", 1)[1] for n in a.obs_names]  # "3x4" in every WSI
        a.write_h5ad(tmp_path / "t.h5ad")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = read_anndata(tmp_path / "t.h5ad")
    assert back.n_obs == a.n_obs
