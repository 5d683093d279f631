"""--protocol published and hest-pooled against independent reimplementations of their formulas."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr

from gpc_bench import InputError, ScoreConfig, score
from gpc_bench.config import deviations, for_protocol
from gpc_bench.io.gmt import GeneSet, write_gmt


def _pcc(a, b):
    """The published code's per-gene r: scipy.stats.pearsonr, NaN for a constant input."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pearsonr(a.astype(np.float64), b.astype(np.float64))[0]


def published_reference(truth, pred, sets, hvg):
    """Per (WSI, gene) pearsonr; per-WSI numpy.nanmean over a pathway's panel genes; mean over WSIs;
    HVG: per-WSI nanmean over the cancer type's list; macro = mean over types of the per-type mean."""
    genes = list(pred.var_names)
    t = truth[:, genes]
    samples = sorted(set(pred.obs["sample_id"]))
    r = {}
    for s in samples:
        ip = np.flatnonzero(pred.obs["sample_id"].to_numpy() == s)
        it = np.flatnonzero(t.obs["sample_id"].to_numpy() == s)
        x, y = np.asarray(t.X)[it], np.asarray(pred.X)[ip]
        r[s] = np.array([_pcc(x[:, g], y[:, g]) for g in range(len(genes))])
    col = {g: j for j, g in enumerate(genes)}
    gpc = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, members in sets.items():
            idx = [col[g] for g in dict.fromkeys(members) if g in col]
            per = [np.nanmean(r[s][idx]) if idx else np.nan for s in samples]
            gpc[name] = np.nanmean(per) if np.isfinite(per).any() else np.nan
        types = pred.obs.groupby("sample_id", observed=True)["cancer_type"].first()
        per_wsi = {s: np.nanmean(r[s][[col[g] for g in hvg[types[s]] if g in col]]) for s in samples}
    by_type = {}
    for s, v in per_wsi.items():
        by_type.setdefault(types[s], []).append(v)
    macro = float(np.mean([np.mean(v) for v in by_type.values()]))
    return gpc, macro


@pytest.fixture(scope="module")
def published_inputs(cohort, tmp_path_factory):
    d = tmp_path_factory.mktemp("pub")
    pred = cohort.predictions["noisy"].copy()
    pred.X[pred.obs["sample_id"].to_numpy() == "WSI00_BRCA", :40] = 1.5  # constant predictions: excluded
    sets = {n: g for s in cohort.gene_sets.values() for n, g in s.items()}
    (d / "sets").mkdir()
    for coll, s in cohort.gene_sets.items():
        write_gmt(d / "sets" / f"{coll}.gmt", [GeneSet(coll, n, tuple(g)) for n, g in s.items()])
    rng = np.random.default_rng(4)
    hvg = {c: [str(g) for g in rng.choice(pred.var_names, 50, replace=False)] + ["NOTINPANEL"]
           for c in sorted(set(pred.obs["cancer_type"]))}  # fmt: skip
    (d / "hvg").mkdir()
    for c, genes in hvg.items():
        (d / "hvg" / f"{c}.json").write_text(json.dumps({"genes": genes}))
    return pred, sets, hvg, d


def test_published_protocol_matches_the_published_formula(cohort, published_inputs):
    pred, sets, hvg, d = published_inputs
    cfg = for_protocol("published", pathways=(str(d / "sets"),), hvg=str(d / "hvg"))
    res = score(pred, cohort.truth, config=cfg, checksum=False)
    gpc_ref, macro_ref = published_reference(cohort.truth, pred, sets, hvg)
    ours = res.pathway_scores.set_index("pathway")["gpc"]
    for name, v in gpc_ref.items():
        assert (np.isnan(v) and np.isnan(ours[name])) or ours[name] == pytest.approx(v, abs=1e-6), name
    assert res.headline["hvg_pcc_macro"] == pytest.approx(macro_ref, abs=1e-6)
    assert res.summary["protocol"]["name"] == "published"
    # hand-written GMTs are not the released sets: judged by content, that is the one deviation
    assert res.summary["protocol"]["collection"] == "user"
    assert [x[:27] for x in res.summary["protocol"]["deviations_from_published"]] == [
        "pathways: a user collection"
    ]
    assert res.summary["counts"]["n_prediction_constant"] >= 40


def test_defaults_say_how_they_depart_from_the_published_protocol(cohort_files):
    res = score(
        cohort_files["good"], cohort_files["truth"], pathways=cohort_files["pathways"], checksum=False
    )
    dev = res.summary["protocol"]["deviations_from_published"]
    assert res.summary["protocol"]["name"] == "default" and len(dev) == 4
    assert (
        any("r = 0" in x for x in dev)
        and any("needs 10" in x for x in dev)
        and any("top 50" in x for x in dev)
        and any("user collection" in x for x in dev)
    )
    assert deviations(ScoreConfig(pathways=None))[-1].startswith("pathways: the shipped")


def test_published_protocol_refuses_what_it_cannot_be(cohort_files, tmp_path):
    from click.testing import CliRunner

    from gpc_bench.cli import main

    with pytest.raises(InputError, match="needs the HEST-Benchmark HVG lists"):
        for_protocol("published", pathways=("x",))
    with pytest.raises(InputError, match="needs the published pathway sets"):
        for_protocol("published", hvg="lists/")
    with pytest.raises(InputError, match="constant_prediction"):
        for_protocol("published", pathways=("x",), hvg="lists/", constant_prediction="zero")
    res = CliRunner().invoke(main, ["score", str(cohort_files["good"]), "--truth", str(cohort_files["truth"]),
                                    "--protocol", "published", "--out", str(tmp_path / "o")])  # fmt: skip
    assert res.exit_code == 2 and "--hvg FOLDER" in res.output


def test_stpath_pooled_matches_pearsonr_over_the_concatenated_spots(cohort, published_inputs):
    pred, sets, _, d = published_inputs
    kw = dict(pathways=d / "sets", min_genes=1, checksum=False)
    res = score(pred, cohort.truth, protocol="stpath-pooled", **kw)
    assert res.summary["config"]["constant_prediction"] == "exclude"  # the protocol fixes pearsonr's NaN
    genes = list(pred.var_names)
    t = cohort.truth[:, genes]
    ctype = pred.obs["cancer_type"].to_numpy()
    col = {g: j for j, g in enumerate(genes)}
    pw = res.pathway_wsi_scores.set_index(["pathway", "sample_id"])["score"]
    for c in sorted(set(ctype)):
        sel = ctype == c
        x, y = np.asarray(t.X)[sel], np.asarray(pred.X)[sel]
        r = np.array([_pcc(x[:, g], y[:, g]) for g in range(len(genes))])
        for name in ("HALLMARK_MODULE_1", "GOBP_RANDOM_2"):
            idx = [col[g] for g in dict.fromkeys(sets[name]) if g in col]
            assert pw[(name, f"pooled:{c}")] == pytest.approx(np.nanmean(r[idx]), abs=1e-10)
    assert len(res.hvg_scores) == len(set(ctype))
    assert any("STPath" in x for x in res.summary["protocol"]["deviations_from_published"])
    assert res.headline["hvg_pcc_micro"] is None and "equal macro" in res.summary["hvg"]["micro"]


# fmt: off
SPLITS = {"WSI00_BRCA": "b1", "WSI04_BRCA": "b1", "WSI08_BRCA": "b2", "WSI01_LUAD": "l1", "WSI05_LUAD": "l1",
          "WSI09_LUAD": "l1", "WSI02_COAD": "c1", "WSI06_COAD": "c2", "WSI03_PRAD": "p1", "WSI07_PRAD": "p1"}
# fmt: on


def hest_reference(truth, pred, hvg, splits):
    """HEST-Benchmark's arithmetic (benchmark.py, trainer.py): per test split, pearsonr of each listed
    gene over the split's concatenated spots, np.mean over genes; per cancer type (dataset) np.mean
    over its splits (merge_fold_results); macro: the mean over cancer types."""
    genes = list(pred.var_names)
    t = truth[:, genes]
    sid_p, sid_t = pred.obs["sample_id"].to_numpy(), t.obs["sample_id"].to_numpy()
    types = pred.obs.groupby("sample_id", observed=True)["cancer_type"].first()
    col = {g: j for j, g in enumerate(genes)}
    per_split, per_type = {}, {}
    splits = {s: v for s, v in splits.items() if s in set(sid_p)}
    for split in sorted(set(splits.values())):
        members = sorted(s for s, v in splits.items() if v == split)
        x = np.concatenate([np.asarray(t.X)[sid_t == s] for s in members])
        y = np.concatenate([np.asarray(pred.X)[sid_p == s] for s in members])
        c = types[members[0]]
        idx = [col[g] for g in hvg[c] if g in col]
        per_split[split] = float(np.mean([_pcc(x[:, g], y[:, g]) for g in idx]))
        per_type.setdefault(c, []).append(per_split[split])
    return per_split, {c: float(np.mean(v)) for c, v in per_type.items()}


def test_hest_pooled_is_hest_benchmarks_arithmetic_over_splits(cohort, published_inputs, tmp_path):
    pred, _, hvg, d = published_inputs
    pred = pred.copy()
    undefined = hvg["COAD"][0]  # constant over split c2: pearsonr's NaN makes that split's mean NaN
    rows, j = pred.obs["sample_id"].to_numpy() == "WSI06_COAD", list(pred.var_names).index(undefined)
    original = pred.X[rows, j].copy()
    pred.X[rows, j] = 0.7
    csv = tmp_path / "splits.csv"
    csv.write_text("sample_id,split\n" + "".join(f"{s},{v}\n" for s, v in SPLITS.items()))
    res = score(pred, cohort.truth, pathways=d / "sets", hvg=str(d / "hvg"), protocol="hest-pooled",
                splits=str(csv), checksum=False)  # fmt: skip
    per_split, per_type = hest_reference(cohort.truth, pred, hvg, SPLITS)
    got = res.hvg_scores.set_index("sample_id")["pcc"]
    assert sorted(got.index) == sorted(f"split:{s}" for s in per_split)
    for split, v in per_split.items():
        assert (np.isnan(v) and np.isnan(got[f"split:{split}"])) or got[f"split:{split}"] == pytest.approx(
            v, abs=1e-9
        )
    assert np.isnan(per_type["COAD"]) and np.isnan(per_split["c2"])
    assert res.headline["hvg_pcc_macro"] is None or np.isnan(res.headline["hvg_pcc_macro"])
    assert res.summary["hvg"]["undefined_cancer_types"] == sorted(
        c for c, v in per_type.items() if np.isnan(v)
    )
    # without the undefined gene, macro is the mean over types of HEST's per-type mean
    pred.X[rows, j] = original
    res = score(pred, cohort.truth, pathways=d / "sets", hvg=str(d / "hvg"), protocol="hest-pooled",
                splits=str(csv), checksum=False)  # fmt: skip
    per_split, per_type = hest_reference(cohort.truth, pred, hvg, SPLITS)
    # lists of genes that vary in every WSI: every split's mean is defined, and so are macro and micro
    t = cohort.truth[pred.obs_names, list(pred.var_names)]
    sid = pred.obs["sample_id"].to_numpy()
    varies = np.all([np.ptp(np.asarray(t.X)[sid == s], 0) > 0 for s in set(sid)], axis=0)
    varies &= np.all([np.ptp(np.asarray(pred.X)[sid == s], 0) > 0 for s in set(sid)], axis=0)
    good = [g for g, v in zip(pred.var_names, varies, strict=True) if v]
    hvg_ok = {c: good[k * 20 : k * 20 + 30] for k, c in enumerate(sorted(hvg))}
    hvg_dir = d / "hvg_defined"
    hvg_dir.mkdir(exist_ok=True)
    for c, genes in hvg_ok.items():
        (hvg_dir / f"{c}.json").write_text(json.dumps({"genes": genes}))
    res = score(pred, cohort.truth, pathways=d / "sets", hvg=str(hvg_dir), protocol="hest-pooled",
                splits=str(csv), checksum=False)  # fmt: skip
    per_split, per_type = hest_reference(cohort.truth, pred, hvg_ok, SPLITS)
    assert len(per_type) >= 2 and np.isfinite(list(per_split.values())).all()
    assert res.headline["hvg_pcc_macro"] == pytest.approx(np.mean(list(per_type.values())), abs=1e-9)
    assert res.headline["hvg_pcc_micro"] == pytest.approx(np.mean(list(per_split.values())), abs=1e-9)
    dev = res.summary["protocol"]["deviations_from_published"]
    assert any("test split of --splits" in x for x in dev) and not any("r = 0" in x for x in dev)


def test_hest_pooled_without_splits_pools_each_wsi_alone(cohort, published_inputs):
    pred, _, hvg, d = published_inputs
    res = score(pred, cohort.truth, pathways=d / "sets", hvg=str(d / "hvg"), protocol="hest-pooled",
                checksum=False)  # fmt: skip
    per_split, _ = hest_reference(cohort.truth, pred, hvg, {s: s for s in SPLITS})
    got = res.hvg_scores.set_index("sample_id")["pcc"]
    for s, v in per_split.items():
        assert (np.isnan(v) and np.isnan(got[f"split:{s}"])) or got[f"split:{s}"] == pytest.approx(
            v, abs=1e-9
        )


def test_splits_are_checked(cohort, published_inputs, tmp_path):
    pred, _, _, d = published_inputs
    kw = dict(pathways=d / "sets", protocol="hest-pooled", checksum=False)
    bad = tmp_path / "bad.csv"
    bad.write_text("sample_id,split\nWSI00_BRCA,x\nWSI01_LUAD,x\n")
    with pytest.raises(InputError, match="no split to 5 WSI"):
        score(pred, cohort.truth, splits=str(bad), **kw)
    bad.write_text("sample_id,split\n" + "".join(f"{s},one\n" for s in SPLITS))
    with pytest.raises(InputError, match="several cancer types"):
        score(pred, cohort.truth, splits=str(bad), **kw)
    bad.write_text("sample,fold\nWSI00_BRCA,1\n")
    with pytest.raises(InputError, match="needs columns sample_id and split"):
        score(pred, cohort.truth, splits=str(bad), **kw)
    with pytest.raises(InputError, match="use --splits with --protocol hest-pooled"):
        ScoreConfig(splits=str(bad))
    with pytest.raises(InputError, match="constant_prediction"):
        ScoreConfig(protocol="hest-pooled", constant_prediction="zero")


@pytest.mark.filterwarnings("ignore:Observation names are not unique")
def test_published_on_her2st_matches_the_published_formula(shared_data, tmp_path):
    import anndata as ad

    from gpc_bench.curation.histoprism import import_histoprism

    d = shared_data / "histoprism" / "published_sets"
    import_histoprism([d / "final_hallmark_genes.pkl", d / "final_GO_genes.pkl"], tmp_path / "sets")
    frames = []
    for s in ("A1", "B1", "C1"):
        df = pd.read_csv(shared_data / "her2st" / "ST-cnts" / f"{s}.tsv.gz", sep="\t", index_col=0)
        frames.append((s, df.loc[:, ~df.columns.duplicated()]))
    genes = sorted(set.intersection(*(set(f.columns) for _, f in frames)))
    x = np.concatenate([np.log1p(f[genes].to_numpy(np.float32)) for _, f in frames])
    obs = pd.concat([pd.DataFrame({"sample_id": s, "cancer_type": "IDC"}, index=f.index) for s, f in frames])
    truth = ad.AnnData(x, obs=obs, var=pd.DataFrame(index=genes))
    rng = np.random.default_rng(0)
    pred = truth.copy()
    pred.X = (0.5 * x + 0.5 * np.roll(x, 1, axis=0) + rng.normal(0, 0.3, x.shape)).astype(np.float32)
    hvg_dir = tmp_path / "hvg"
    hvg_dir.mkdir()
    lists = json.loads((shared_data / "histoprism" / "hest_bench_hvg50" / "IDC.symbols.json").read_text())
    (hvg_dir / "IDC.json").write_text(json.dumps(lists))
    cfg = for_protocol("published", pathways=(str(tmp_path / "sets"),), hvg=str(hvg_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # spot names repeat across sections
        res = score(pred, truth, config=cfg, checksum=False)
    from gpc_bench import load_pathways

    sets = {s.name: list(s.genes) for s in load_pathways(tmp_path / "sets").sets}
    gpc_ref, macro_ref = published_reference(truth, pred, sets, {"IDC": lists["genes"]})
    ours = res.pathway_scores.set_index("pathway")["gpc"]
    diffs = [abs(ours[n] - v) for n, v in gpc_ref.items() if np.isfinite(v)]
    assert len(diffs) > 100 and max(diffs) < 1e-6
    assert res.headline["hvg_pcc_macro"] == pytest.approx(macro_ref, abs=1e-6)
    assert res.summary["protocol"]["collection"] == "published"
    assert res.summary["protocol"]["deviations_from_published"] == []


def test_the_shipped_collection_is_recognised_by_content(published_inputs):
    """Judged by what it holds: the shipped collection given by path is still the shipped one, also
    under --protocol published."""
    from gpc_bench import load_pathways
    from gpc_bench.config import collection_kind
    from gpc_bench.io.gmt import default_collection_path

    shipped = str(default_collection_path())
    coll = load_pathways(shipped)
    assert collection_kind(coll) == "shipped"
    for cfg in (ScoreConfig(pathways=(shipped,)), for_protocol("published", pathways=(shipped,), hvg="x/")):
        dev = deviations(cfg, coll, {"source": "user list"})
        assert any("shipped gpc-default" in x for x in dev), cfg.protocol
    _, _, _, d = published_inputs
    assert collection_kind(load_pathways(d / "sets")) == "user"


def test_clustering_that_cannot_discriminate_and_single_wsi_types_are_warned(tmp_path):
    from helpers import make_small

    from gpc_bench.compare import leaderboard

    c = make_small(n_wsi=10, cancer_types=tuple(f"T{i}" for i in range(8)))  # 10 WSIs into 8 types
    gmt = tmp_path / "s.gmt"
    write_gmt(gmt, [GeneSet("go", n, tuple(g)) for s in c.gene_sets.values() for n, g in s.items()])
    res = score(
        c.predictions["good"], c.truth, pathways=gmt, cluster="wsi", checksum=False, out=tmp_path / "r"
    )
    w = " ".join(res.summary["warnings"])
    assert "clustering 10 items into 8 cancer types cannot discriminate" in w
    assert "have a single WSI" in w
    lb = leaderboard([tmp_path / "r"], n_boot=10)
    assert any("single WSI" in n for n in lb.info["notes"])


def test_leaderboard_protocol_check(cohort_files, tmp_path):
    from gpc_bench.compare import leaderboard

    score(cohort_files["good"], cohort_files["truth"], pathways=cohort_files["pathways"], out=tmp_path / "a",
          checksum=False)  # fmt: skip
    with pytest.raises(InputError, match=r"--protocol published: .*'pred_good': 'default'"):
        leaderboard([tmp_path / "a"], n_boot=0, protocol="published")
    assert leaderboard([tmp_path / "a"], n_boot=0, protocol="default").info["protocol"]["name"] == "default"


def test_a_protocol_given_over_a_recorded_config_brings_its_fixed_values(cohort_files, tmp_path):
    from click.testing import CliRunner

    from gpc_bench.cli import main

    base = ["score", str(cohort_files["good"]), "--truth", str(cohort_files["truth"]), "--pathways",
            str(cohort_files["pathways"]), "--no-checksum"]  # fmt: skip
    r = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, [*base, "--config", str(tmp_path / "a" / "summary.json"), "--protocol",
                                  "stpath-pooled", "--out", str(tmp_path / "b")])  # fmt: skip
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "b" / "summary.json").read_text())["config"]
    assert cfg["protocol"] == "stpath-pooled" and cfg["constant_prediction"] == "exclude"
