"""Leaderboard: hand-computed means, win rates, ranks and Wilcoxon p-values; refusals; bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import write_fake_run

from gpc_bench import InputError
from gpc_bench.cli import main
from gpc_bench.compare import leaderboard
from gpc_bench.compare.stats import bh_adjust, bootstrap_weights, wilcoxon

TYPES = {"w1": "A", "w2": "A", "w3": "A", "w4": "B"}
NAN = float("nan")

# per-WSI pathway scores, chosen so every number below is easy to work out by hand
REF = {
    ("hallmark", "H1"): [0.1, 0.2, 0.3, 0.4],  # 0.25
    ("hallmark", "H2"): [0.5, 0.5, NAN, 0.5],  # 0.5 (the NaN WSI is skipped)
    ("go", "G1"): [0.0, 0.0, 0.0, 0.0],  # 0.0
    ("go", "G2"): [0.2, 0.2, 0.2, 0.2],  # 0.2
    ("go", "G3"): [0.1, 0.1, 0.1, 0.1],  # 0.1
}
MODEL = {
    ("hallmark", "H1"): [0.3] * 4,  # 0.3  win  (+0.05)
    ("hallmark", "H2"): [0.5] * 4,  # 0.5  tie
    ("go", "G1"): [0.1] * 4,  # 0.1  win  (+0.1)
    ("go", "G2"): [0.15] * 4,  # 0.15 loss (-0.05)
    ("go", "G3"): [0.3] * 4,  # 0.3  win  (+0.2)
}
CTRL = {k: [0.0] * 4 for k in REF}


@pytest.fixture()
def runs(tmp_path):
    return [
        write_fake_run(tmp_path / "ref", "ref", REF, [0.3, 0.3, 0.3, 0.7], TYPES),
        write_fake_run(tmp_path / "m", "m", MODEL, [0.6, 0.6, 0.6, 0.2], TYPES),
        write_fake_run(tmp_path / "ctrl", "ctrl", CTRL, [0.0] * 4, TYPES, control="shuffle"),
    ]


def test_hand_computed_table(runs):
    lb = leaderboard(runs, reference="ref", n_boot=0)
    t = lb.table.set_index("model")
    # HVG: micro = mean over WSIs; macro = mean over types of the per-type mean
    assert t.loc["ref", "hvg_pcc_micro"] == pytest.approx(0.4)
    assert t.loc["ref", "hvg_pcc_macro"] == pytest.approx((0.3 + 0.7) / 2)
    assert t.loc["m", "hvg_pcc_micro"] == pytest.approx(0.5)
    assert t.loc["m", "hvg_pcc_macro"] == pytest.approx((0.6 + 0.2) / 2)
    assert t.loc["ref", "gpc_hallmark"] == pytest.approx((0.25 + 0.5) / 2)
    assert t.loc["ref", "gpc_go"] == pytest.approx((0.0 + 0.2 + 0.1) / 3)
    assert t.loc["m", "gpc_hallmark"] == pytest.approx((0.3 + 0.5) / 2)
    assert t.loc["m", "gpc_go"] == pytest.approx((0.1 + 0.15 + 0.3) / 3)
    assert t.loc["m", "gpc_level_5"] == pytest.approx((0.3 + 0.5 + 0.1 + 0.15 + 0.3) / 5)
    # win rates against the reference, ties counted apart
    assert t.loc["m", "win_rate_hallmark"] == pytest.approx(1 / 2)
    assert t.loc["m", "tie_rate_hallmark"] == pytest.approx(1 / 2)
    assert t.loc["m", "win_rate_go"] == pytest.approx(2 / 3)
    assert t.loc["m", "tie_rate_go"] == 0
    assert np.isnan(t.loc["ref", "tie_rate_go"]) and np.isnan(
        t.loc["ref", "win_rate_go"]
    )  # no self-comparison
    # ranks: mean rank over hvg macro (ref 1, m 2), hvg micro, gpc hallmark, gpc go (m 1) -> m first
    assert t.loc["m", "rank"] == 1 and t.loc["ref", "rank"] == 2
    assert pd.isna(t.loc["ctrl", "rank"]) and bool(t.loc["ctrl", "control"])
    # Wilcoxon paired over WSIs (the unit), on each WSI's mean over the collection's pathways.
    # GO: ref 0.1 on every WSI, m 0.55 / 3 on every WSI -> four equal positive differences: the
    # smallest two-sided p four WSIs allow, 2 / 2**4
    from scipy.stats import wilcoxon as sp_wilcoxon

    assert t.loc["m", "wilcoxon_p_go"] == pytest.approx(2 / 2**4)
    # Hallmark per WSI: ref (0.3, 0.35, 0.3 [H2 missing], 0.45), m 0.4 everywhere
    ref_h, m_h = np.array([0.3, 0.35, 0.3, 0.45]), np.full(4, 0.4)
    assert t.loc["m", "wilcoxon_p_hallmark"] == pytest.approx(sp_wilcoxon(m_h, ref_h).pvalue, rel=1e-6)
    assert np.isnan(t.loc["ref", "wilcoxon_p_go"])
    assert lb.info["smallest_p"] == 2 / 2**4


def test_rank_by_one_metric_and_markdown(runs):
    lb = leaderboard(runs, reference="ref", n_boot=0, rank_by="hvg_pcc_macro")
    t = lb.table.set_index("model")
    assert t.loc["ref", "rank"] == 1 and t.loc["m", "rank"] == 2
    md = lb.to_markdown()
    assert md.splitlines()[0].startswith("| model | rank | HVG PCC macro | HVG PCC micro | GPC Hallmark")
    assert "| m | 2 | 0.400 | 0.500 | 0.400 | 0.183 |" in md
    assert "<NA>" not in md and "nan" not in md
    ref_row = next(line for line in md.splitlines() if line.startswith("| ref |"))
    assert ref_row.endswith("|  |  |  |  |")  # no win rates or tests of the reference against itself


def test_pathway_comparison_and_bh(runs):
    lb = leaderboard(runs, reference="ref", n_boot=0)
    c = lb.comparison
    row = c[(c["model"] == "m") & (c["pathway"] == "H1")].iloc[0]
    assert row["difference"] == pytest.approx(0.05) and row["n_wsi"] == 4
    # per-WSI differences 0.2, 0.1, 0.0, -0.1 -> Wilcoxon (zeros dropped) against scipy directly
    from scipy.stats import wilcoxon as sp_wilcoxon

    assert row["p_value"] == pytest.approx(sp_wilcoxon([0.3] * 4, REF[("hallmark", "H1")]).pvalue)
    p = np.array([0.01, 0.04, 0.03, NAN, 0.5])
    # BH by hand: sorted 0.01, 0.03, 0.04, 0.5 (m = 4) -> raw 0.04, 0.06, 0.0533, 0.5 -> step-up min
    q = bh_adjust(p)
    assert q[0] == pytest.approx(0.04) and q[2] == pytest.approx(0.04 * 4 / 3)
    assert q[1] == pytest.approx(0.04 * 4 / 3) and np.isnan(q[3]) and q[4] == pytest.approx(0.5)


def test_refuses_different_collections_and_wsis(tmp_path):
    a = write_fake_run(tmp_path / "a", "a", REF, [0.1] * 4, TYPES)
    b = write_fake_run(tmp_path / "b", "b", MODEL, [0.1] * 4, TYPES, collection_id="sha256:other")
    with pytest.raises(InputError, match="different pathway collections"):
        leaderboard([a, b], n_boot=0)
    three = {k: v for k, v in TYPES.items() if k != "w4"}
    c = write_fake_run(tmp_path / "c", "c", {k: v[:3] for k, v in MODEL.items()}, [0.1] * 3, three)
    with pytest.raises(InputError, match="different WSI sets.*w4"):
        leaderboard([a, c], n_boot=0)
    lb = leaderboard([a, c], n_boot=0, intersect=True)
    assert lb.table["n_wsi"].tolist() == [3, 3] and "3 WSIs common" in lb.info["notes"][0]
    with pytest.raises(InputError, match="appear more than once"):
        leaderboard([a, a], n_boot=0)


def test_bootstrap_intervals_shrink_with_more_wsis(tmp_path):
    rng = np.random.default_rng(1)

    def width(n_wsi):
        types = {f"w{i:03d}": "AB"[i % 2] for i in range(n_wsi)}
        pw = {("go", f"G{k}"): 0.3 + 0.1 * rng.standard_normal(n_wsi) for k in range(20)}
        run = write_fake_run(
            tmp_path / f"r{n_wsi}", f"r{n_wsi}", pw, 0.5 + 0.1 * rng.standard_normal(n_wsi), types
        )
        long = leaderboard([run], n_boot=500, seed=0).long
        row = long[(long["metric"] == "gpc") & (long["collection"] == "go")].iloc[0]
        assert row["ci_low"] <= row["value"] <= row["ci_high"]
        return row["ci_high"] - row["ci_low"]

    w_small, w_large = width(6), width(96)
    assert w_large < w_small / 2  # ~ 1/sqrt(16) in theory


def test_bootstrap_weights_are_stratified_and_seeded():
    types = ["A", "A", "A", "B", "C", "C"]
    w = bootstrap_weights(types, 200, seed=3)
    assert w.shape == (200, 6)
    assert (w[:, :3].sum(axis=1) == 3).all() and (w[:, 3] == 1).all() and (w[:, 4:].sum(axis=1) == 2).all()
    assert np.array_equal(w, bootstrap_weights(types, 200, seed=3))


def test_wilcoxon_identical_is_nan():
    assert np.isnan(wilcoxon([0.1, 0.2], [0.1, 0.2])[1])


def test_cli_writes_deterministic_files(runs, tmp_path):
    outs = []
    for k in range(2):
        out = tmp_path / f"lb{k}" / "leaderboard.csv"
        res = CliRunner().invoke(
            main,
            [
                "-q",
                "leaderboard",
                *map(str, runs),
                "--reference",
                "ref",
                "--out",
                str(out),
                "--bootstrap",
                "200",
                "--format",
                "md",
            ],
        )
        assert res.exit_code == 0, res.output
        assert res.output.startswith("| model |")
        outs.append(out.parent)
    for name in ("leaderboard.csv", "leaderboard_long.csv", "pathway_comparison.csv", "leaderboard.json"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()
    long = pd.read_csv(outs[0] / "leaderboard_long.csv")
    assert list(long.columns) == ["model", "collection", "metric", "value", "ci_low", "ci_high"]


def test_recomputed_numbers_equal_the_runs_own(scored_runs):
    from gpc_bench import load_run

    runs = [scored_runs["good"], scored_runs["noisy"]]
    t = leaderboard(runs, n_boot=0).table.set_index("model")
    for name, path in zip(("good", "noisy"), runs, strict=True):
        h = load_run(path).summary["headline"]
        for col in ("hvg_pcc_macro", "hvg_pcc_micro", "gpc_hallmark", "gpc_go"):
            assert t.loc[name, col] == pytest.approx(h[col], abs=1e-12)
        for lv, v in h["gpc_by_variance_level"].items():
            if v is not None:
                assert t.loc[name, f"gpc_level_{lv}"] == pytest.approx(v, abs=1e-12)


def test_rows_by_rank_with_controls_last_and_p_values_in_scientific_notation(scored_runs):
    from gpc_bench.compare.leaderboard import DEPTH_BASELINE_ROW as BASELINE
    from gpc_bench.compare.leaderboard import fmt_p

    runs = [scored_runs["mean"], scored_runs["noisy"], scored_runs["good"]]  # given worst first
    lb = leaderboard(runs, reference="noisy", controls=["mean"], n_boot=50)
    # the depth baseline, computed from the truth, is the last control row
    assert lb.table["model"].tolist() == ["good", "noisy", "mean", BASELINE]
    assert lb.table["rank"].tolist()[:2] == [1, 2]
    assert lb.table["control"].tolist() == [False, False, True, True]
    assert list(dict.fromkeys(lb.long["model"])) == ["good", "noisy", "mean", BASELINE]
    shown = lb.display()
    assert shown["rank"].tolist() == ["1", "2", "control", "control"]
    assert " [" in shown.loc[0, "GPC Hallmark"]  # the bootstrap interval is shown
    assert shown.loc[1, "wins vs ref Hallmark"] == ""  # the reference's own row
    assert (fmt_p(1.2e-73), fmt_p(0.0312), fmt_p(float("nan"))) == ("1.2e-73", "0.031", "")
    args = [
        "-q",
        "leaderboard",
        *map(str, runs),
        "--reference",
        "noisy",
        "--control",
        "mean",
        "--bootstrap",
        "20",
    ]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    table = [line for line in res.output.splitlines() if not line.startswith("gpc-bench:")]
    lines = [line.split()[0] for line in table[1:4]]
    assert lines == ["good", "noisy", "mean"] and "<NA>" not in res.output
