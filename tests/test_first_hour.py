"""What got in a new user's way: early refusals, recorded warnings, concurrent runs, messages."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import click
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import reference_scores

from gpc_bench import InputError, score
from gpc_bench.cli import main


def _gmt(tmp_path, cohort):
    from gpc_bench.io.gmt import GeneSet, write_gmt

    sets = {n: g for s in cohort.gene_sets.values() for n, g in s.items()}
    write_gmt(tmp_path / "sets.gmt", [GeneSet("go", n, tuple(g)) for n, g in sets.items()])
    return tmp_path / "sets.gmt", sets


# ------------------------------------------------------------------------------ early refusals
@pytest.mark.parametrize("bad", ["missing-folder", "missing.gmt"])
def test_a_missing_pathways_path_is_refused_before_inputs_are_read(cohort_files, tmp_path, monkeypatch, bad):
    import gpc_bench.scoring as scoring

    monkeypatch.setattr(scoring, "open_source", lambda *a, **k: pytest.fail("inputs were opened"))
    kind = "GMT file" if bad.endswith(".gmt") else "collection folder or GMT file"
    with pytest.raises(InputError, match=f"--pathways {kind} not found: .*{bad}"):
        score(cohort_files["good"], cohort_files["truth"], pathways=tmp_path / bad)
    res = CliRunner().invoke(
        main,
        ["score", str(cohort_files["good"]), "--pathways", str(tmp_path / bad), "--out", str(tmp_path / "o")],
    )
    assert res.exit_code == 2 and "not found" in res.output and not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------ warnings
def test_count_like_inputs_are_warned_and_recorded(cohort, tmp_path):
    gmt, _ = _gmt(tmp_path, cohort)
    counts = cohort.truth.copy()
    counts.X = np.expm1(counts.X).round().astype(np.float32)  # log1p undone: raw counts
    counts.X[0, :5] = 40.0
    pred = cohort.predictions["good"].copy()
    pred.X = np.round(np.expm1(pred.X) * 10).astype(np.float32)
    pred.X[0, :5] = 500.0
    res = score(pred, counts, pathways=gmt, checksum=False, out=tmp_path / "run")
    warnings = json.loads((tmp_path / "run" / "summary.json").read_text())["warnings"]
    assert any(
        "measured expression looks like raw counts" in w and "--truth-normalize" in w for w in warnings
    )
    assert any("predictions look like raw counts" in w for w in warnings)
    assert res.summary["warnings"] == warnings


def test_truth_normalize_against_an_independent_computation(cohort, tmp_path):
    gmt, sets = _gmt(tmp_path, cohort)
    counts = cohort.truth.copy()
    counts.X = np.expm1(counts.X).round().astype(np.float32)
    pred = cohort.predictions["good"]
    res = score(pred, counts, pathways=gmt, truth_normalize=1e4, checksum=False)
    assert not any("counts" in w for w in res.summary["warnings"]) and res.config.truth_normalize == 1e4
    x = counts.X.astype(np.float64)
    expect = counts.copy()
    expect.X = np.log1p(x / x.sum(1, keepdims=True) * 1e4).astype(np.float32)  # scanpy's normalize_total
    r_ref, _, gpc_ref = reference_scores(expect, pred, sets)
    gs = res.gene_scores.set_index(["sample_id", "gene"])["pcc"]
    np.testing.assert_allclose(gs.loc[r_ref.index].to_numpy(), r_ref.to_numpy(), atol=1e-6)
    ps = res.pathway_scores.set_index("pathway")["gpc"]
    np.testing.assert_allclose(ps.loc[gpc_ref.index].to_numpy(), gpc_ref.to_numpy(), atol=1e-6)
    with pytest.raises(InputError, match="both given"):
        score(pred, counts, pathways=gmt, truth_normalize=1e4, truth_log1p=True)


def test_no_pathway_scored_is_said_loudly_and_recorded(cohort, tmp_path, caplog):
    from gpc_bench.io.gmt import GeneSet, write_gmt

    write_gmt(tmp_path / "far.gmt", [GeneSet("go", "GOBP_ELSEWHERE", ("G00001", "NOPE1", "NOPE2"))])
    with caplog.at_level("WARNING", logger="gpc_bench"):
        res = score(cohort.predictions["good"], cohort.truth, pathways=tmp_path / "far.gmt", checksum=False)
    assert res.headline["gpc_go"] is None
    (w,) = [w for w in res.summary["warnings"] if w.startswith("no pathway")]
    assert "no pathway could be scored" in w and "600 genes are shared" in w and "at least 10" in w
    assert "no pathway could be scored" in caplog.text


def test_duplicated_gene_ids_are_named(cohort, tmp_path):
    gmt, _ = _gmt(tmp_path, cohort)
    pred = cohort.predictions["good"].copy()
    names = list(pred.var_names)
    names[3] = names[2]
    pred.var_names = names
    res = score(pred, cohort.truth, pathways=gmt, checksum=False)
    (w,) = [w for w in res.summary["warnings"] if w.startswith("duplicated gene IDs")]
    assert "1 in predictions ['G00002']" in w


def test_spot_mismatch_message_lists_only_what_is_unmatched(cohort, tmp_path):
    gmt, _ = _gmt(tmp_path, cohort)
    truth = cohort.truth.copy()
    pred = cohort.predictions["good"][:-3].copy()  # the truth has 3 extra spots
    with pytest.raises(InputError) as err:
        score(pred, truth, pathways=gmt)
    msg = str(err.value)
    assert "every prediction spot is matched" in msg and "e.g. []" not in msg
    assert "unmatched truth spots e.g." in msg


# --------------------------------------------------------------------------------- run folders
def test_a_folder_written_meanwhile_is_not_replaced(tmp_path):
    from gpc_bench.io.runfolder import atomic_dir

    out = tmp_path / "run"
    with pytest.raises(InputError, match="written by another run"):
        with atomic_dir(out) as tmp:
            (tmp / "mine.txt").write_text("mine")
            out.mkdir()  # another run finishes first
            (out / "theirs.txt").write_text("theirs")
    assert [p.name for p in out.iterdir()] == ["theirs.txt"]
    assert not list(tmp_path.glob(".run.tmp-*"))


def test_two_runs_into_one_folder_exactly_one_succeeds(cohort_files, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "gpc_bench", "-q", "score", str(cohort_files["good"]), "--truth",
           str(cohort_files["truth"]), "--pathways", str(cohort_files["pathways"]), "--out", str(out),
           "--no-checksum"]  # fmt: skip
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "already exists" in loser or "written by another run" in loser
    assert (out / "summary.json").is_file() and not list(tmp_path.glob(".run.tmp-*"))


def test_folders_left_by_killed_runs_are_removed(cohort_files, tmp_path):
    host = "".join(c if c.isalnum() else "_" for c in platform.node())
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = tmp_path / f".run.tmp-{host}-{int(dead.stdout)}"
    live = tmp_path / f".run.tmp-{host}-{os.getppid()}"
    other_host = tmp_path / ".run.tmp-elsewhere-1"
    for d in (stale, live, other_host):
        d.mkdir()
    score(
        cohort_files["good"],
        cohort_files["truth"],
        pathways=cohort_files["pathways"],
        out=tmp_path / "run",
        checksum=False,
    )
    assert not stale.exists() and live.exists() and other_host.exists()


# ------------------------------------------------------------------------------------------ CLI
def test_global_options_after_the_subcommand(cohort_files, tmp_path):
    args = [str(cohort_files["good"]), "--truth", str(cohort_files["truth"]), "--pathways",
            str(cohort_files["pathways"]), "--out", str(tmp_path / "r"), "--no-checksum"]  # fmt: skip
    res = CliRunner().invoke(main, ["score", *args, "-q"])
    assert res.exit_code == 0, res.output
    assert "run folder" in res.output and "genes:" not in res.output  # -q: no info lines


def test_every_option_has_help():
    def walk(cmd, path):
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.hidden and not p.help:
                yield " ".join(path) + " " + "/".join(p.opts)

    assert list(walk(main, ["gpc-bench"])) == []


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere(monkeypatch, caplog):
    import logging

    from gpc_bench._progress import Progress

    log = logging.getLogger("gpc_bench.test_progress")
    with caplog.at_level("INFO", logger="gpc_bench.test_progress"):
        with Progress(10, "things", log, every=4) as p:
            for k in range(10):
                p.step("did %d", k + 1)
    assert [r.getMessage() for r in caplog.records] == ["did 4", "did 8", "did 10"]
    caplog.clear()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with caplog.at_level("INFO", logger="gpc_bench.test_progress"):
        with Progress(3, "things", log) as p:
            assert p.bar is not None
            for _ in range(3):
                p.step("did one")
            assert p.bar.n == 3
    assert caplog.records == []  # the bar replaces the lines


def test_demo_prints_one_line_per_model(tmp_path):
    res = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "d")])
    assert res.exit_code == 0, res.output
    assert res.output.count("scored ") == 4 and "[1/" not in res.output
