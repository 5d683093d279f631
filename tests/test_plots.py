"""Figures: the saved files' content (points, colour bar, annotation text), not only their existence."""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from gpc_bench import InputError, load_run
from gpc_bench.cli import main
from gpc_bench.compare import leaderboard
from gpc_bench.plot import leaderboard_table, levels, pathway_activity, save, scatter, spatial, variance


def svg_groups(path):
    """gid -> (number of markers drawn, texts) for every element with an id."""
    out = {}
    for el in ET.parse(path).getroot().iter():
        gid = el.get("id")
        if gid:
            uses = sum(1 for e in el.iter() if e.tag.endswith("use"))
            texts = ["".join(e.itertext()) for e in el.iter() if e.tag.endswith("text")]
            out[gid] = (uses, texts)
    return out


def _markers(path, gid):
    """Number of drawn markers (paths outside definitions) in the element with this id."""
    for el in ET.parse(path).getroot().iter():
        if el.get("id") == gid:
            return sum(
                1
                for e in el.iter()
                if e.tag.endswith(("path", "use")) and e.get("d", "M") and not e.get("id")
            )
    raise KeyError(gid)


@pytest.fixture(scope="module")
def runs(scored_runs):
    return scored_runs


def test_scatter_svg_content(runs, tmp_path):
    fig = scatter(runs["noisy"], runs["good"], label_top=2)
    path = save(fig, tmp_path / "scatter.svg")
    g = svg_groups(path)
    a = load_run(runs["noisy"]).pathway_scores.set_index(["collection", "pathway"])
    b = load_run(runs["good"]).pathway_scores.set_index(["collection", "pathway"])
    for coll in ("hallmark", "go"):
        ok = (a["status"] == "ok") & (b["status"] == "ok")
        sel = ok & (a.index.get_level_values(0) == coll)
        n = int(sel.sum())
        wins = int((a.loc[sel, "gpc"] > b.loc[sel, "gpc"]).sum())
        assert g[f"points-{coll}"][0] == n
        assert g[f"annotation-{coll}"][1] == [f"noisy better on {wins}/{n} ({100 * wins / n:.1f}%)"]
    ticks = [t for t in g["colorbar"][1] if t.isdigit()]
    assert ticks == [str(k) for k in range(1, 11)] and "variance level" in g["colorbar"][1]


def test_formats_and_bad_extension(runs, tmp_path):
    fig = scatter(runs["noisy"], runs["good"])
    png = save(fig, tmp_path / "s.png")
    import matplotlib.image as mpimg

    img = mpimg.imread(png)
    assert img.ndim == 3 and img.shape[0] > 200 and img[..., :3].std() > 0.05
    assert save(fig, tmp_path / "s.pdf").read_bytes()[:4] == b"%PDF"
    with pytest.raises(InputError, match="format"):
        save(fig, tmp_path / "s.jpeg")
    assert not list(tmp_path.glob(".*tmp*"))


def test_levels_variance_and_table(runs, tmp_path):
    g = svg_groups(save(levels([runs["good"], runs["noisy"]]), tmp_path / "lv.svg"))
    assert "level-line-good" in g and "level-line-noisy" in g
    run = load_run(runs["good"])
    g = svg_groups(save(variance(runs["good"]), tmp_path / "var.svg"))
    n_thr = sum(1 for t in run.summary["variance_levels"]["thresholds"] if t > 0)
    assert sum(1 for k in g if k.startswith("threshold-")) == n_thr == 9
    lb = leaderboard([runs["good"], runs["noisy"], runs["mean"]], n_boot=0, controls=["mean"])
    lb.write(tmp_path / "lb.csv")
    g = svg_groups(save(leaderboard_table(tmp_path / "lb.csv"), tmp_path / "tab.svg"))
    assert _markers(tmp_path / "tab.svg", "column-gpc_go") == 2  # the two models
    assert _markers(tmp_path / "tab.svg", "control-gpc_go") == 2  # the control and depth baseline, apart
    texts = [t for _, (_, ts) in g.items() for t in ts]
    assert "control" in texts and f"{lb.table.set_index('model').loc['good', 'gpc_go']:.3f}" in texts


def test_plot_cli(runs, tmp_path):
    out = tmp_path / "fig.svg"
    res = CliRunner().invoke(
        main,
        [
            "-q",
            "plot",
            "scatter",
            str(runs["good"]),
            str(runs["noisy"]),
            "--out",
            str(out),
            "--label-top",
            "3",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "good better on" in " ".join(svg_groups(out)["annotation-hallmark"][1])


def test_pathway_activity_is_pearson():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(50, 6))
    p = t + rng.normal(size=(50, 6))
    p[:, 5] = 1.0  # constant prediction -> r = 0
    t[:, 4] = 2.0  # constant truth -> left out
    act_t, act_p, r, used = pathway_activity(p, t)
    assert used.tolist() == [True] * 4 + [False, True]
    from scipy.stats import pearsonr

    assert r[:4] == pytest.approx([pearsonr(t[:, j], p[:, j])[0] for j in range(4)])
    assert r[4] == 0.0
    assert act_t.shape == (50,) and np.isclose(act_t.mean(), 0)


def _her2st_section(data, section, tmp_path):
    """The section's measured log1p counts as an h5ad with pixel coordinates, and a prediction."""
    import anndata as ad

    with gzip.open(data / "ST-cnts" / f"{section}.tsv.gz", "rt") as fh:
        counts = pd.read_csv(fh, sep="\t", index_col=0)
    spots = pd.read_csv(data / "ST-spotfiles" / f"{section}_selection.tsv", sep="\t")
    spots.index = [f"{x}x{y}" for x, y in zip(spots["x"], spots["y"], strict=True)]
    common = [b for b in counts.index if b in spots.index]
    counts = counts.loc[common]
    x = np.log1p(counts.to_numpy(dtype=np.float32))
    obs = pd.DataFrame({"sample_id": section, "cancer_type": "BRCA"}, index=common)
    truth = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=counts.columns.astype(str)))
    truth.obsm["spatial"] = spots.loc[common, ["pixel_x", "pixel_y"]].to_numpy(dtype=np.float64)
    rng = np.random.default_rng(0)
    pred = truth.copy()
    pred.X = (x + rng.normal(0, 0.5, x.shape)).astype(np.float32)
    truth.write_h5ad(tmp_path / "truth.h5ad")
    pred.write_h5ad(tmp_path / "pred.h5ad")
    return tmp_path / "pred.h5ad", tmp_path / "truth.h5ad", len(common)


def test_spatial_on_her2st(shared_data, tmp_path):
    data = shared_data / "her2st"
    section = "B4"
    image = next((data / "ST-imgs" / "B" / section).glob("*.jpg"))
    pred, truth, n_spots = _her2st_section(data, section, tmp_path)
    out = tmp_path / "spatial.svg"
    res = CliRunner().invoke(
        main,
        [
            "-q",
            "plot",
            "activity",
            str(pred),
            "--truth",
            str(truth),
            "--sample",
            section,
            "--pathway",
            "HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION",
            "--image",
            str(image),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    g = svg_groups(out)
    assert g["spots-measured"][0] == n_spots and g["spots-predicted"][0] == n_spots
    title = [t for _, (_, ts) in g.items() for t in ts if t.startswith("HALLMARK_EPITHELIAL")]
    assert title and "in B4: PCC 0." in title[0]
    assert "<image" in out.read_text()  # the H&E image is embedded under the spots
    assert main.commands["plot"].commands["spatial"] is main.commands["plot"].commands["activity"]
    png = tmp_path / "spatial.png"
    save(spatial(pred, truth, sample=section, pathway="HALLMARK_HYPOXIA", image=image), png)
    assert png.stat().st_size > 50_000


@pytest.mark.filterwarnings("ignore:Observation names are not unique")
def test_spatial_matches_score_when_barcodes_repeat_across_wsis(cohort, tmp_path):
    """Real data names spots `10x14` in every section: the measured map must come from its own WSI."""
    import re

    import matplotlib

    matplotlib.use("Agg")
    from gpc_bench import score
    from gpc_bench.io.gmt import GeneSet, write_gmt
    from gpc_bench.plot import spatial

    truth = cohort.truth.copy()
    pred = cohort.predictions["good"].copy()
    bare = [n.split(":", 1)[1] for n in truth.obs_names]  # "WSI00_BRCA:3x4" -> "3x4": repeats
    truth.obs_names, pred.obs_names = bare, bare
    rng = np.random.default_rng(0)
    truth = truth[rng.permutation(truth.n_obs)].copy()  # and another spot order
    sets = {n: g for s in cohort.gene_sets.values() for n, g in s.items()}
    write_gmt(tmp_path / "s.gmt", [GeneSet("go", n, tuple(g)) for n, g in sets.items()])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        truth.write_h5ad(tmp_path / "truth.h5ad")
        pred.write_h5ad(tmp_path / "pred.h5ad")
    res = score(tmp_path / "pred.h5ad", tmp_path / "truth.h5ad", pathways=tmp_path / "s.gmt", checksum=False)
    pw = res.pathway_wsi_scores.set_index(["pathway", "sample_id"])
    for sample in ("WSI01_LUAD", "WSI05_LUAD"):
        fig = spatial(
            tmp_path / "pred.h5ad",
            tmp_path / "truth.h5ad",
            sample=sample,
            pathway="HALLMARK_MODULE_1",
            pathways=tmp_path / "s.gmt",
        )
        title = fig._suptitle.get_text()
        got = float(re.search(r"PCC (-?[0-9.]+) \((\d+) genes\)", title).group(1))
        expect = pw.loc[("HALLMARK_MODULE_1", sample)]
        assert got == pytest.approx(expect["score"], abs=5e-4)
        assert f"({expect['n_scored']} genes)" in title and "model: pred" in title
    from gpc_bench import InputError

    with pytest.raises(InputError, match="did you mean 'HALLMARK_MODULE_1'"):
        spatial(
            tmp_path / "pred.h5ad",
            tmp_path / "truth.h5ad",
            sample="WSI01_LUAD",
            pathway="MODULE_1",
            pathways=tmp_path / "s.gmt",
        )


def test_leaderboard_figure_marks_the_reference_and_shows_intervals(runs, tmp_path):
    import matplotlib as mpl

    from gpc_bench.plot.table import CMAP, VALUE_FONTSIZE, format_interval

    lb = leaderboard(
        [runs["good"], runs["noisy"], runs["mean"]], reference="noisy", n_boot=30, controls=["mean"]
    )
    lb.write(tmp_path / "lb.csv")
    fig = leaderboard_table(tmp_path / "lb.csv")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axis = fig.axes[0]
    texts = {t.get_text(): t for t in axis.texts}
    ref = next(t for t in axis.texts if t.get_gid() == "reference")
    assert ref.get_text() == "noisy (ref)"
    dots = {c.get_gid(): c for c in axis.collections}
    # the reference's label ends before the first column of circles begins
    first = min(dots.values(), key=lambda c: c.get_offsets()[:, 0].min())
    x_first = axis.transData.transform(first.get_offsets())[:, 0].min()
    assert ref.get_window_extent(renderer).x1 < x_first - 5
    # each column: the best model is the darkest colour of the scale, never white; controls apart
    cmap = mpl.colormaps[CMAP]
    table = lb.table.set_index("model")
    for c in ("gpc_go", "hvg_pcc_macro"):
        models = dots[f"column-{c}"]
        colours = models.get_facecolors()
        assert len(colours) == 2  # good and noisy; the control is not on the scale
        best = int(np.argmax(table.loc[["good", "noisy"], c].to_numpy()))
        assert np.allclose(colours[best], cmap(0.92), atol=1e-6)
        assert np.all(colours[:, :3].min(axis=1) < 0.9)  # nothing drawn white
        ctl = dots[f"control-{c}"]
        assert len(ctl.get_facecolors()) == 0 or np.all(ctl.get_facecolors()[:, 3] == 0)
    # intervals with enough digits to differ, value text readable
    lo, hi = lb.long.set_index(["model", "collection", "metric"]).loc[
        ("good", "go", "gpc"), ["ci_low", "ci_high"]
    ]
    shown = [t for t in texts if format_interval(lo, hi) in t]
    assert shown and format_interval(lo, hi).split(", ")[0][1:] != format_interval(lo, hi).split(", ")[1][:-1]
    assert format_interval(0.73012, 0.73049) == "[0.7301, 0.7305]"
    values = [t for t in axis.texts if t.get_text()[:1].isdigit() or t.get_text()[:2] == "-0"]
    assert values and min(t.get_fontsize() for t in values) >= VALUE_FONTSIZE


def test_levels_show_bands_counts_and_a_title(runs, tmp_path):
    fig = levels([runs["good"], runs["noisy"]], n_boot=40)
    axis = fig.axes[0]
    assert axis.get_title().startswith("GPC by variance level")
    assert {c.get_gid() for c in axis.collections} >= {"level-band-good", "level-band-noisy"}
    ps = load_run(runs["good"]).pathway_scores
    expect = np.bincount(ps["variance_level"].fillna(0).astype(int), minlength=11)[1:]
    shown = [int(t.get_text().split("\n")[1]) for t in axis.get_xticklabels()]
    assert shown == expect.tolist()


def test_scatter_labels_do_not_collide_and_drop_prefixes(runs):
    fig = scatter(runs["good"], runs["noisy"], label_top=6)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for axis in fig.axes[:-1]:
        labels = [t for t in axis.texts if t.get_fontsize() == 6]
        assert len(labels) == 6
        assert not any(t.get_text().startswith(("GOBP_", "GOCC_", "GOMF_", "HALLMARK_")) for t in labels)
        boxes = [t.get_window_extent(renderer) for t in labels]
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                assert not boxes[i].overlaps(boxes[j]), (labels[i].get_text(), labels[j].get_text())


def test_spatial_panels_standardised_titled_and_coordinates_checked(cohort, tmp_path):
    import matplotlib.pyplot as plt
    from PIL import Image

    from gpc_bench import InputError
    from gpc_bench.io.gmt import GeneSet, write_gmt

    pred = cohort.predictions["good"].copy()
    pred.layers["truth"] = np.asarray(cohort.truth.X) * 5.0  # measured on a 5x wider scale
    sets = {n: g for s in cohort.gene_sets.values() for n, g in s.items()}
    write_gmt(tmp_path / "s.gmt", [GeneSet("go", n, tuple(g)) for n, g in sets.items()])
    pred.write_h5ad(tmp_path / "model_x.h5ad")
    kw = dict(sample="WSI01_LUAD", pathway="HALLMARK_MODULE_1", pathways=tmp_path / "s.gmt")
    fig = spatial(tmp_path / "model_x.h5ad", name="HistoPrism", **kw)
    spots = {c.get_gid(): c for a in fig.axes for c in a.collections}
    for label in ("measured", "predicted"):  # neither panel is washed out by the other's scale
        vals = spots[f"spots-{label}"].get_array()
        assert np.std(vals) == pytest.approx(1.0, abs=1e-6) and abs(np.mean(vals)) < 1e-6
    assert "model: HistoPrism" in fig._suptitle.get_text()
    plt.close(fig)
    # array coordinates (0.5-7.5) over a full-resolution image: packed into a corner -> refused
    pred.obsm["spatial"] = pred.obsm["spatial"] / 100
    pred.write_h5ad(tmp_path / "model_x.h5ad")
    Image.new("RGB", (2000, 1500), "white").save(tmp_path / "he.png")
    with pytest.raises(InputError, match="under 5% of the 2000 x 1500 image"):
        spatial(tmp_path / "model_x.h5ad", image=tmp_path / "he.png", **kw)
    pred.obsm["spatial"] = pred.obsm["spatial"] * 100  # pixels of the full scan over a thumbnail
    pred.write_h5ad(tmp_path / "model_x.h5ad")
    Image.new("RGB", (200, 150), "white").save(tmp_path / "thumb.png")
    with pytest.raises(InputError, match="outside the 200 x 150 image"):
        spatial(tmp_path / "model_x.h5ad", image=tmp_path / "thumb.png", **kw)


def test_levels_draw_controls_apart_and_mark_thin_levels(runs):
    import matplotlib.pyplot as plt

    from gpc_bench.plot.levels import MIN_PATHWAYS_PER_LEVEL

    fig = levels([runs["mean"], runs["good"], runs["noisy"]], n_boot=20, controls=["mean"])
    axis = fig.axes[0]
    lines = {ln.get_gid(): ln for ln in axis.lines if ln.get_gid()}
    assert "control-line-mean" in lines and "level-line-mean" not in lines
    ctl = lines["control-line-mean"]
    assert ctl.get_linestyle() == "--" and mpl_grey(ctl.get_color())
    gids = {c.get_gid() for c in axis.collections}
    assert "level-band-good" in gids and "level-band-mean" not in gids  # no band for a control
    labels = [t.get_text() for t in axis.get_legend().get_texts()]
    assert labels[-1] == "mean (control)"  # the models first
    counts = np.bincount(
        load_run(runs["good"]).pathway_scores["variance_level"].fillna(0).astype(int), minlength=11
    )[1:]
    thin = [k + 1 for k, c in enumerate(counts) if 0 < c < MIN_PATHWAYS_PER_LEVEL]
    red = [int(t.get_text().split("\n")[0]) for t in axis.get_xticklabels() if t.get_color() == "C3"]
    assert red == thin
    if thin:
        assert "thin-levels-good" in gids
    plt.close(fig)


def mpl_grey(colour) -> bool:
    import matplotlib.colors as mc

    r, g, b = mc.to_rgb(colour)
    return abs(r - g) < 1e-6 and abs(g - b) < 1e-6
