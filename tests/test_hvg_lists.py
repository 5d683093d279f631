"""HVG lists as they are published: HEST-Benchmark's layouts, ID-style variants, maps and partial lists."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gpc_bench import InputError, score
from gpc_bench.metrics.hvg import read_hvg_lists

TYPES = ("BRCA", "COAD", "LUAD", "PRAD")


def _write(path, genes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"genes": list(genes)}))


def test_a_folder_with_both_id_styles_reads_the_panels(tmp_path):
    symbols = [f"G{i:05d}" for i in range(5)]
    ensembl = [f"ENSG{i:011d}" for i in range(5)]
    _write(tmp_path / "IDC.ensembl.json", ensembl)
    _write(tmp_path / "IDC.symbols.json", symbols)
    sym_panel = (np.array(symbols, dtype=object), np.array(symbols, dtype=object))
    ens_panel = (np.array(ensembl, dtype=object), np.array(symbols, dtype=object))
    assert read_hvg_lists(tmp_path, panel=sym_panel)["IDC"] == symbols
    assert read_hvg_lists(tmp_path, panel=ens_panel)["IDC"] == ensembl
    sym_only = (np.array(symbols, dtype=object), np.array(["", "", "", "", ""], dtype=object))
    assert read_hvg_lists(tmp_path, panel=sym_only)["IDC"] == symbols


def test_hest_benchmark_layout_and_union_file(cohort, cohort_files, tmp_path):
    genes = [str(g) for g in cohort.predictions["good"].var_names]
    rng = np.random.default_rng(1)
    lists = {c: [genes[i] for i in rng.choice(len(genes), 50, replace=False)] for c in TYPES}
    for c, g in lists.items():
        _write(tmp_path / "bench" / c / "var_50genes.json", g)
    _write(tmp_path / "bench" / "union_hvg50.json", sorted({x for g in lists.values() for x in g}))
    assert sorted(read_hvg_lists(tmp_path / "bench")) == sorted(TYPES)
    kw = dict(pathways=cohort_files["pathways"], checksum=False, min_genes=5)
    res = score(cohort_files["good"], cohort_files["truth"], hvg=str(tmp_path / "bench"), **kw)
    for c in TYPES:
        _write(tmp_path / "flat" / f"{c}.json", lists[c])
    flat = score(cohort_files["good"], cohort_files["truth"], hvg=str(tmp_path / "flat"), **kw)
    assert res.headline["hvg_pcc_macro"] == flat.headline["hvg_pcc_macro"]
    assert res.summary["hvg"]["n_in_panel"] == {c: 50 for c in TYPES}


def test_hvg_map_and_partial_lists(cohort, cohort_files, tmp_path):
    from gpc_bench.cli import main

    genes = [str(g) for g in cohort.predictions["good"].var_names]
    for name in ("IDC", "COAD", "LUNG", "PRAD"):  # BRCA and LUAD need a map
        _write(tmp_path / "lists" / f"{name}.json", genes[:40] + [f"NOT_IN_PANEL_{i}" for i in range(10)])
    kw = dict(pathways=cohort_files["pathways"], checksum=False, min_genes=5, hvg=str(tmp_path / "lists"))
    with pytest.raises(InputError, match=r"(?s)no HVG list for cancer types \['BRCA', 'LUAD'\].*--hvg-map"):
        score(cohort_files["good"], cohort_files["truth"], **kw)
    res = score(cohort_files["good"], cohort_files["truth"], hvg_map="BRCA=IDC,LUAD=LUNG", **kw)
    assert res.summary["hvg"]["map"] == {"BRCA": "IDC", "LUAD": "LUNG"}
    assert res.summary["config"]["hvg_map"] == ["BRCA=IDC", "LUAD=LUNG"]
    partial = [w for w in res.summary["warnings"] if w.startswith("HVG list of")]
    assert len(partial) == 4 and "only 40 of its 50 genes" in partial[0]
    with pytest.raises(InputError, match="names HVG lists \\['IDCX'\\]"):
        score(cohort_files["good"], cohort_files["truth"], hvg_map={"BRCA": "IDCX", "LUAD": "LUNG"}, **kw)
    with pytest.raises(InputError, match="is not TYPE=LIST"):
        score(cohort_files["good"], cohort_files["truth"], hvg_map="BRCA", **kw)
    out = tmp_path / "run"
    r = CliRunner().invoke(main, [
        "score", str(cohort_files["good"]), "--truth", str(cohort_files["truth"]), "--pathways",
        str(cohort_files["pathways"]), "--hvg", str(tmp_path / "lists"), "--hvg-map", "BRCA=IDC",
        "--hvg-map", "LUAD=LUNG", "--no-checksum", "--out", str(out),
    ])  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["headline"]["hvg_pcc_macro"] == pytest.approx(res.headline["hvg_pcc_macro"], abs=1e-12)
