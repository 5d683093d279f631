"""The click CLI: a thin layer over the API."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from gpc_bench.cli import main


def test_score_cli(cohort_files, tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(
        main,
        [
            "-q",
            "score",
            str(cohort_files["good"]),
            "--truth",
            str(cohort_files["truth"]),
            "--pathways",
            str(cohort_files["pathways"]),
            "--out",
            str(out),
            "--name",
            "good",
            "--cluster",
            "wsi",
            "--hvg",
            "20",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "good" and summary["config"]["hvg"] == "20"
    assert f"{summary['headline']['gpc_hallmark']:.4f}" in res.output


def test_cli_error_is_short_and_exit_2(cohort_files, tmp_path):
    res = CliRunner().invoke(main, ["score", str(tmp_path / "missing.h5ad"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "error: predictions file not found" in res.output
    assert "Traceback" not in res.output


def test_demo_cli(tmp_path):
    res = CliRunner().invoke(main, ["-q", "demo", "--out", str(tmp_path / "demo")])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].split()[:3] == ["model", "hvg_pcc_macro", "hvg_pcc_micro"]
    rows = {ln.split()[0]: [float(v) for v in ln.split()[1:5]] for ln in lines[1:5]}
    assert rows["good"][2] > rows["partial"][2] > rows["noisy"][2] > rows["mean"][2] == 0.0
    assert (tmp_path / "demo" / "runs" / "good" / "summary.json").exists()
    lb = pd.read_csv(tmp_path / "demo" / "leaderboard.csv").set_index("model")
    assert lb.loc["good", "rank"] == 1 and bool(lb.loc["mean", "control"])
    assert lb.loc["good", "gpc_go"] == pytest.approx(rows["good"][3], abs=1e-4)
    assert (tmp_path / "demo" / "scatter.png").stat().st_size > 10_000
    assert '<table id="leaderboard">' in (tmp_path / "demo" / "report.html").read_text()
