"""Gene-ID styles and the shipped symbol <-> Ensembl table."""

from __future__ import annotations

import numpy as np

from gpc_bench import genes


def test_detect_and_strip():
    assert genes.detect_id_style(["ENSG00000141510", "ENSG00000146648.18", "TP53"]) == "ensembl"
    assert genes.detect_id_style(["TP53", "EGFR", "ENSG00000141510"]) == "symbol"
    # an ID with a line break cannot fool the one-scan count
    assert genes.detect_id_style(["ENSG00000141510", "ENSG00000146648\nENSG00000146649"]) == "symbol"
    assert genes.strip_version(["ENSG00000146648.18", "HLA-A.1", "TP53"]).tolist() == [
        "ENSG00000146648",
        "HLA-A.1",
        "TP53",
    ]


def test_shipped_table():
    e2s = genes.ensembl_to_symbol()
    assert e2s["ENSG00000141510"] == "TP53"
    assert e2s["ENSG00000146648"] == "EGFR"
    assert "ENSG00000141510" in genes.symbol_to_ensembl()["TP53"]
    assert len(e2s) > 30000
    info = genes.table_info()
    assert info["ncbi_gene_date"] == "2022-Sep12" and "r-bioc-org.hs.eg.db" in info["source"]


def test_to_symbols_prefers_var_column():
    ids = ["ENSG00000141510.2", "ENSG00000146648", "ENSG99999999999"]
    assert genes.to_symbols(ids, var_symbols=[None, "MYEGFR", "X1"]).tolist() == ["TP53", "MYEGFR", "X1"]
    assert genes.to_symbols(ids).tolist() == ["TP53", "EGFR", ""]


def test_first_occurrence_matches_a_loop():
    from gpc_bench.io.align import _first_occurrence

    rng = np.random.default_rng(5)
    for _ in range(20):
        pool = ["", None, *[f"G{i}" for i in range(30)]]
        keys = np.array([pool[i] for i in rng.integers(0, len(pool), rng.integers(0, 80))], dtype=object)
        seen, ref = set(), []
        for i, k in enumerate(keys.tolist()):
            if k and k not in seen:
                seen.add(k)
                ref.append(i)
        keep, dropped = _first_occurrence(keys)
        assert keep.tolist() == ref
        assert dropped == sum(1 for k in keys.tolist() if k) - len(ref)
