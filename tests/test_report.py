"""The HTML report: self-contained, complete, deterministic, and rendered by headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

import pandas as pd
import pytest
from click.testing import CliRunner

from gpc_bench.cli import main
from gpc_bench.report import report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]


@pytest.fixture(scope="module")
def runs(scored_runs):
    return [scored_runs[n] for n in ("good", "noisy", "mean")]


@pytest.fixture(scope="module")
def html_report(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    res = CliRunner().invoke(
        main, ["-q", "report", *map(str, runs), "--control", "mean", "--bootstrap", "100", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    return out


def test_self_contained_and_complete(html_report):
    text = html_report.read_text()
    assert not re.search(r'(src|href)="(?!data:)', text), "no external resources"
    assert "<link" not in text and "http://" not in text and "https://" not in text
    imgs = re.findall(r'<img [^>]*src="data:image/png;base64,', text)
    assert len(imgs) == 5  # table, levels, two scatters against the reference, variance
    table = re.search(r'<table id="leaderboard">(.*?)</table>', text, re.S).group(1)
    assert table.count("<tr") == 5  # header + three models + the depth baseline
    assert '<tr class="control"><td>mean</td>' in table
    for word in ("Gene Pathway Coherence", "Provenance", "pred_good.h5ad", "seed 0"):
        assert word in text


def test_deterministic(runs, html_report, tmp_path):
    again = report(runs, tmp_path / "again.html", controls=["mean"], n_boot=100)
    assert again.read_bytes() == html_report.read_bytes()


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian package 'chromium')")
def test_renders_in_headless_chromium(html_report, tmp_path):
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, "--window-size=1200,2000", f"--screenshot={shot}", html_report.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[:2] == (2000, 1200) and img[..., :3].std() > 0.05
    dom = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, "--dump-dom", html_report.as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert 'data-images-loaded="5"' in dom  # every inlined figure decoded
    # the leaderboard figure is shown at its own size, so its value text keeps its 8 pt at 110 dpi
    from gpc_bench.plot.table import VALUE_FONTSIZE

    assert 'data-leaderboard-scale="1.000"' in dom
    assert VALUE_FONTSIZE * 110 / 72 >= 12
    table = re.search(r'<table id="leaderboard">(.*?)</table>', dom, re.S).group(1)
    assert table.count("<tr") == 5  # header, three models, depth baseline (per-pathway tables after)


def test_reference_warnings_and_per_pathway_section(scored_runs, tmp_path):
    import json
    import shutil as sh

    from gpc_bench.compare.null import pathway_null

    good = tmp_path / "good"
    sh.copytree(scored_runs["good"], good)
    pathway_null(good, n_draws=50, seed=0).write(good)  # the null z appears next to its pathways
    noisy = tmp_path / "noisy"
    sh.copytree(scored_runs["noisy"], noisy)
    summary = json.loads((noisy / "summary.json").read_text())
    summary["warnings"] = ["predictions look like raw counts (integers up to 99)"]
    (noisy / "summary.json").write_text(json.dumps(summary))
    runs = [good, noisy, scored_runs["mean"]]
    text = report(runs, tmp_path / "r.html", reference="noisy", controls=["mean"], n_boot=20).read_text()
    assert '<p id="reference">Reference model: <b>noisy</b>' in text
    assert text.index('id="reference"') < text.index('id="leaderboard"')
    warn = re.search(r'<ul id="warnings">(.*?)</ul>', text, re.S).group(1)
    assert "<b>noisy</b>: predictions look like raw counts" in warn
    section = text[text.index('id="per-pathway"') : text.index("<h2>Metrics")]
    assert "good against noisy: the largest differences" in section and "BH-adjusted p" in section
    assert "good: best and worst pathways" in section and "mean: best and worst pathways" in section
    mean_part = section[section.index("mean: best and worst") :]
    assert "Nothing varies: every pathway scores 0.000" in mean_part.split("<h3>")[0]
    good_table = section[section.index("good: best and worst") :].split("</table>")[0]
    assert "<th>null z</th>" in good_table
    z = pd.read_csv(good / "pathway_null.csv").set_index("pathway")["z"]
    best = pd.read_csv(good / "pathway_scores.csv").query("status == 'ok'").sort_values("gpc").iloc[-1]
    assert f"<td>{best['pathway']}</td>" in good_table and f"{z[best['pathway']]:.2f}" in good_table
    listed = re.findall(r"<tr><td>([^<]+)</td><td>(?:hallmark|go)</td>", good_table)
    assert listed and len(listed) == len(set(listed))  # no pathway listed as both best and worst
