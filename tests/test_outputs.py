"""Outputs: checked before work, written atomically, and nothing gpc-bench did not write replaced."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gpc_bench import InputError, score
from gpc_bench.cli import main
from gpc_bench.io import runfolder


def _snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its sha256 (hidden files too)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _cli(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit), res.output
    return res


@pytest.fixture
def inputs(cohort_files, tmp_path):
    """The predictions, truth and pathways copied into one folder with a note of the user's."""
    import shutil

    d = tmp_path / "project"
    d.mkdir()
    for key in ("good", "truth"):
        shutil.copy(cohort_files[key], d / cohort_files[key].name)
    shutil.copytree(cohort_files["pathways"], d / "pathways")
    (d / "notes.txt").write_text("my notes")
    return d


def _score_args(d: Path, out, *extra):
    return ["score", d / "pred_good.h5ad", "--truth", d / "truth.h5ad", "--pathways", d / "pathways",
            "--out", out, "--no-checksum", *extra]  # fmt: skip


def test_overwrite_never_deletes_the_inputs_folder(inputs):
    before = _snapshot(inputs)
    res = _cli(*_score_args(inputs, inputs, "--overwrite"))
    assert res.exit_code == 2 and "holds the input" in res.output and "Traceback" not in res.output
    assert _snapshot(inputs) == before


def test_out_naming_the_predictions_file_is_refused(inputs):
    before = _snapshot(inputs)
    for flags in ((), ("--overwrite",)):
        res = _cli(*_score_args(inputs, inputs / "pred_good.h5ad", *flags))
        assert res.exit_code == 2 and "is an input" in res.output, res.output
    assert _snapshot(inputs) == before


def test_overwrite_refuses_a_folder_gpc_bench_did_not_write(inputs, tmp_path):
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.tex").write_text("...")
    res = _cli(*_score_args(inputs, other, "--overwrite"))
    assert res.exit_code == 2 and "replaces only a gpc-bench run folder" in res.output
    assert (other / "chapter1.tex").read_text() == "..."
    # a run folder is replaced; a collection folder is not (another kind)
    assert _cli(*_score_args(inputs, tmp_path / "run")).exit_code == 0
    assert _cli(*_score_args(inputs, tmp_path / "run", "--overwrite")).exit_code == 0
    runfolder.write_marker(tmp_path / "run", "collection")
    res = _cli(*_score_args(inputs, tmp_path / "run", "--overwrite"))
    assert res.exit_code == 2 and "is a gpc-bench collection folder" in res.output


def test_symlink_cwd_and_unwritable_outputs_refused_before_work(inputs, tmp_path, monkeypatch):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    res = _cli(*_score_args(inputs, tmp_path / "link"))
    assert res.exit_code == 2 and "symbolic link" in res.output
    (tmp_path / "afile").write_text("x")
    res = _cli(*_score_args(inputs, tmp_path / "afile" / "run"))
    assert res.exit_code == 2 and "is a file, not a folder" in res.output
    res = _cli(*_score_args(inputs, tmp_path / ("r" * 250)))
    assert res.exit_code == 2 and "name is too long" in res.output
    monkeypatch.chdir(tmp_path / "real")
    for out in (".", ".."):
        res = _cli(*_score_args(inputs, out, "--overwrite"))
        assert res.exit_code == 2 and "is the current folder" in res.output, out
    # a read-only file system: the probe folder cannot be made
    real_mkdir = os.mkdir

    def ro_mkdir(path, *a, **k):
        if str(path).startswith(str(tmp_path / "ro")):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_mkdir(path, *a, **k)

    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(os, "mkdir", ro_mkdir)
    res = _cli(*_score_args(inputs, tmp_path / "ro" / "run"))
    assert res.exit_code == 2 and "cannot be written: Read-only file system" in res.output
    assert list((tmp_path / "ro").iterdir()) == []


def test_a_write_error_is_a_message_and_leaves_nothing(inputs, tmp_path, monkeypatch):
    def full(folder, kind):
        raise OSError(errno.ENOSPC, "No space left on device", str(folder))

    monkeypatch.setattr(runfolder, "write_marker", full)
    res = _cli(*_score_args(inputs, tmp_path / "out" / "run"))
    assert res.exit_code == 2 and "could not write" in res.output and "No space left" in res.output
    assert "Traceback" not in res.output
    assert list((tmp_path / "out").iterdir()) == []


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_run_killed_while_replacing_is_recovered(cohort_files, tmp_path):
    kw = dict(pathways=cohort_files["pathways"], checksum=False)
    out = tmp_path / "run"
    score(cohort_files["good"], cohort_files["truth"], out=out, **kw)
    previous = _snapshot(out)
    # SIGKILL between the two renames: the old run moved aside, the new one still temporary
    host, pid = runfolder._host(), _dead_pid()
    out.rename(tmp_path / f".run.old-{host}-{pid}")
    (tmp_path / f".run.tmp-{host}-{pid}").mkdir()
    runfolder.recover_stale(out)
    assert _snapshot(out) == previous and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    # killed after the second rename: the replaced run is removed by the next run
    (tmp_path / f".run.old-{host}-{pid}").mkdir()
    score(cohort_files["noisy"], cohort_files["truth"], out=out, overwrite=True, **kw)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_leaderboard_outputs_are_one_unit(scored_runs, tmp_path):
    runs = list(scored_runs.values())
    out = tmp_path / "lb" / "board.csv"
    assert _cli("leaderboard", *runs, "--bootstrap", 0, "--out", out).exit_code == 0
    names = sorted(p.name for p in out.parent.iterdir())
    assert names == ["board.csv", "board.json", "board_long.csv", "pathway_comparison.csv"]
    res = _cli("leaderboard", *runs[:2], "--bootstrap", 0, "--out", out)
    assert res.exit_code == 2 and "already exists" in res.output
    assert _cli("leaderboard", *runs[:2], "--bootstrap", 0, "--out", out, "--overwrite").exit_code == 0
    # a user's own file of the same name is never replaced
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "pathway_comparison.csv").write_text("my,table\n")
    res = _cli("leaderboard", *runs, "--bootstrap", 0, "--out", mine / "board.csv", "--overwrite")
    assert res.exit_code == 2 and "not one" in res.output
    assert sorted(p.name for p in mine.iterdir()) == ["pathway_comparison.csv"]
    # a killed leaderboard's temporary folder is cleaned by the next one
    stale = out.parent / f".board.csv.tmp-{runfolder._host()}-{_dead_pid()}"
    stale.mkdir()
    (stale / "board.csv").write_text("half")
    assert _cli("leaderboard", *runs, "--bootstrap", 0, "--out", out, "--overwrite").exit_code == 0
    assert not stale.exists()


def test_concurrent_leaderboards_leave_one_complete_set(scored_runs, tmp_path):
    import json

    import pandas as pd

    runs = [str(p) for p in scored_runs.values()]
    out = tmp_path / "board.csv"
    cmd = [sys.executable, "-m", "gpc_bench", "-q", "leaderboard", "--bootstrap", "0", "--out", str(out),
           "--overwrite"]  # fmt: skip
    procs = [subprocess.Popen([*cmd, *r]) for r in (runs, runs[:2], runs, runs[:2])]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    info = json.loads((tmp_path / "board.json").read_text())
    models = sorted(info["runs"]) if isinstance(info["runs"], dict) else sorted(info["models"])
    from gpc_bench.compare.leaderboard import DEPTH_BASELINE_ROW

    runs_of = lambda t: sorted(set(t["model"]) - {DEPTH_BASELINE_ROW})  # noqa: E731 - the computed row
    assert runs_of(pd.read_csv(out)) == models
    assert runs_of(pd.read_csv(tmp_path / "board_long.csv")) == models
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["board.csv", "board.json", "board_long.csv", "pathway_comparison.csv"]
    )


@pytest.mark.parametrize("command", ["report", "plot", "null"])
def test_writers_refuse_existing_outputs_without_overwrite(scored_runs, tmp_path, command):
    run = scored_runs["good"]
    if command == "report":
        out, args = tmp_path / "r.html", ["report", *scored_runs.values(), "--bootstrap", 0]
    elif command == "plot":
        out, args = tmp_path / "f.png", ["plot", "variance", run]
    else:
        out, args = tmp_path / "nullout" / "pathway_null.csv", ["null", run, "--draws", 20]
    target = ["--out", out if command != "null" else out.parent]
    assert _cli(*args, *target).exit_code == 0
    first = out.read_bytes()
    res = _cli(*args, *target)
    assert res.exit_code == 2 and "exists" in res.output and out.read_bytes() == first
    assert _cli(*args, *target, "--overwrite").exit_code == 0
    out.write_bytes(b"someone else's file")
    if command == "null":
        (out.parent / "pathway_null.json").write_text("{}")
    res = _cli(*args, *target, "--overwrite")
    assert res.exit_code == 2 and "not one" in res.output and out.read_bytes() == b"someone else's file"


def test_figures_and_reports_are_signed(scored_runs, tmp_path):
    import matplotlib.pyplot as plt

    from gpc_bench.plot import save, variance

    for ext in ("png", "svg", "pdf"):
        fig = variance(scored_runs["good"])
        p = save(fig, tmp_path / f"v.{ext}")
        plt.close(fig)
        assert runfolder.file_is_ours(p), ext
    (tmp_path / "x.png").write_bytes(b"\x89PNG not ours")
    assert not runfolder.file_is_ours(tmp_path / "x.png")


def test_demo_refuses_a_folder_of_someone_else(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "truth.h5ad").write_text("the user's real data")
    res = _cli("demo", "--out", tmp_path)
    assert res.exit_code == 2 and "not a folder gpc-bench wrote" in res.output
    assert (tmp_path / "data" / "truth.h5ad").read_text() == "the user's real data"


@pytest.mark.parametrize("sid", ["../escape", "/abs/path", "a/b", "..", ""])
def test_featurize_refuses_path_like_sample_ids(tmp_path, sid):
    import pandas as pd

    from gpc_bench.baselines.histoprism.featurize import featurize_manifest

    pd.DataFrame([{"sample_id": sid, "image": "i.png", "spots": "s.tsv", "split": "train"}]).to_csv(
        tmp_path / "m.csv", index=False
    )
    with pytest.raises(InputError, match="cannot be a file name"):
        featurize_manifest(tmp_path / "m.csv", tmp_path / "emb")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]


def test_decompression_bomb_image_refused(tmp_path):
    from PIL import Image

    from gpc_bench.io.image import open_image

    Image.new("L", (64, 64)).save(tmp_path / "small.png")
    with pytest.raises(InputError, match="claims 64 x 64 = 4,096 pixels, more than the 3,000 allowed"):
        with open_image(tmp_path / "small.png", max_pixels=3000):
            pass
    with pytest.raises(InputError, match="decompression bomb"):  # PIL's own guard, far above
        with open_image(tmp_path / "small.png", max_pixels=1000):
            pass
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(InputError, match="cannot read image"):
        with open_image(tmp_path / "bad.png"):
            pass


def test_check_out_on_inputs_given_as_objects_and_missing_parents(tmp_path):
    out = runfolder.check_out(tmp_path / "a" / "b" / "run", kind="run", inputs=[object(), None])
    assert out == tmp_path / "a" / "b" / "run" and not (tmp_path / "a").exists()
