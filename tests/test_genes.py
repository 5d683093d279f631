"""Gene-ID styles and the shipped symbol <-> Ensembl table."""

from __future__ import annotations

import numpy as np
import pytest

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


# the Hallmark genes that the alphabetically-first rule mapped to another symbol (or lost)
_AMBIGUOUS_HALLMARK = {
    "ENSG00000143384": "MCL1", "ENSG00000159216": "RUNX1", "ENSG00000184012": "TMPRSS2",
    "ENSG00000160201": "U2AF1", "ENSG00000140650": "PMM2", "ENSG00000182621": "PLCB1",
    "ENSG00000213809": "KLRK1", "ENSG00000158747": "NBL1", "ENSG00000124713": "GNMT",
    "ENSG00000151967": "SCHIP1", "ENSG00000054277": "OPN3", "ENSG00000181135": "ZNF707",
}  # fmt: skip


def test_ambiguous_ensembl_ids_get_their_approved_protein_coding_symbol():
    from gpc_bench.genes import ambiguous_ensembl, ensembl_to_symbol, table_info

    table = ensembl_to_symbol()
    for ens, sym in _AMBIGUOUS_HALLMARK.items():
        assert table[ens] == sym, ens
    amb = ambiguous_ensembl()
    assert amb["ENSG00000143384"] == ("MCL1", ("ADAMTSL4-AS1",))
    assert amb["ENSG00000283154"][0] == "IQCJ-SCHIP1"  # the read-through's own ID keeps its name
    assert len(amb) == table_info()["n_ensembl_ambiguous"]
    # every ID's symbol is one of its candidates
    assert all(table[e] == s for e, (s, _) in amb.items())


def test_an_ensembl_panel_keeps_mcl1_runx1_and_tmprss2(tmp_path):
    import anndata as ad
    import pandas as pd

    from gpc_bench import score
    from gpc_bench.io.gmt import GeneSet, write_gmt

    rng = np.random.default_rng(0)
    ids = list(_AMBIGUOUS_HALLMARK)
    obs = pd.DataFrame({"sample_id": np.repeat(["a", "b"], 30), "cancer_type": "T"},
                       index=[f"s{i}" for i in range(60)])  # fmt: skip
    x = rng.random((60, len(ids))).astype(np.float32)
    truth = ad.AnnData(x, obs=obs)
    pred = ad.AnnData((x + rng.normal(0, 0.1, x.shape)).astype(np.float32), obs=obs)
    truth.var_names = pred.var_names = ids
    write_gmt(tmp_path / "hallmark.gmt", [GeneSet("hallmark", "H", tuple(_AMBIGUOUS_HALLMARK.values()))])
    res = score(pred, truth, pathways=tmp_path / "hallmark.gmt", min_genes=1, checksum=False)
    pg = res.table("pathway_genes")
    assert sorted(pg["symbol"]) == sorted(_AMBIGUOUS_HALLMARK.values())
    assert res.pathway_scores["n_scored"].tolist() == [len(ids)]


def _pair(ids, seed=0, n=60, var=None):
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(seed)
    obs = pd.DataFrame({"sample_id": np.repeat(["a", "b"], n // 2), "cancer_type": "T"},
                       index=[f"s{i}" for i in range(n)])  # fmt: skip
    x = rng.random((n, len(ids))).astype(np.float32)
    truth = ad.AnnData(x, obs=obs, var=pd.DataFrame(index=list(ids)) if var is None else var)
    pred = ad.AnnData((x + rng.normal(0, 0.1, x.shape)).astype(np.float32), obs=obs, var=truth.var.copy())
    return pred, truth


def test_a_mixed_panel_keeps_its_symbol_named_genes(tmp_path):
    """Published panels are mostly Ensembl IDs with some symbols: both kinds are matched and counted."""
    from gpc_bench import score
    from gpc_bench.io.gmt import GeneSet, write_gmt

    ens = list(_AMBIGUOUS_HALLMARK)[:8]
    ids = ens + ["VIM", "CD74", "KRT19"]  # symbols amid Ensembl IDs
    pred, truth = _pair(ids)
    genes = [_AMBIGUOUS_HALLMARK[e] for e in ens] + ["VIM", "CD74", "KRT19"]
    write_gmt(tmp_path / "h.gmt", [GeneSet("hallmark", "H", tuple(genes))])
    res = score(pred, truth, pathways=tmp_path / "h.gmt", min_genes=1, checksum=False)
    assert res.pathway_scores["n_scored"].tolist() == [11]
    counts = res.summary["counts"]
    assert (
        counts["n_genes_ensembl_ids"],
        counts["n_genes_symbol_ids"],
        counts["n_genes_without_symbol"],
    ) == (8, 3, 0)
    assert any("mixes gene ID styles: 8 Ensembl IDs" in w for w in res.summary["warnings"])
    # the same mixed predictions against a symbol truth: the Ensembl IDs are mapped, the symbols kept
    truth_sym = truth.copy()
    truth_sym.var_names = genes
    res2 = score(pred, truth_sym, pathways=tmp_path / "h.gmt", min_genes=1, checksum=False)
    assert res2.summary["counts"]["n_genes_shared"] == 11
    np.testing.assert_allclose(res2.pathway_scores["gpc"], res.pathway_scores["gpc"], atol=1e-12)


def test_an_ensembl_gmt_is_mapped_for_a_symbol_panel(tmp_path):
    from gpc_bench import load_pathways, score
    from gpc_bench.io.gmt import GeneSet, write_gmt

    ens = list(_AMBIGUOUS_HALLMARK)
    pred, truth = _pair([_AMBIGUOUS_HALLMARK[e] for e in ens])
    write_gmt(tmp_path / "h.gmt", [GeneSet("hallmark", "H", (*ens, "ENSG99999999999"))])
    coll = load_pathways(tmp_path / "h.gmt")
    assert coll.sets[0].genes == tuple(_AMBIGUOUS_HALLMARK[e] for e in ens)
    assert coll.sources[0]["gene_ids"] == {
        "style": "ensembl",
        "mapped_to_symbols": len(ens),
        "without_symbol": 1,
    }
    res = score(pred, truth, pathways=tmp_path / "h.gmt", min_genes=1, checksum=False)
    assert res.pathway_scores["n_scored"].tolist() == [len(ens)]


def test_pathway_genes_lost_to_id_mapping_are_reported(tmp_path):
    """A panel ID whose symbol (here from var['gene_symbol']) is not the pathway's gene is not
    'absent': the run says which pathway lost which gene, and why."""
    import pandas as pd

    from gpc_bench import score
    from gpc_bench.io.gmt import GeneSet, write_gmt

    ens = list(_AMBIGUOUS_HALLMARK)
    var = pd.DataFrame({"gene_symbol": [_AMBIGUOUS_HALLMARK[e] for e in ens]}, index=ens)
    var.loc["ENSG00000143384", "gene_symbol"] = "ADAMTSL4-AS1"  # the old table's wrong symbol for MCL1
    pred, truth = _pair(ens, var=var)
    genes = (*_AMBIGUOUS_HALLMARK.values(), "NOT_A_GENE")
    write_gmt(tmp_path / "h.gmt", [GeneSet("hallmark", "H", genes)])
    res = score(pred, truth, pathways=tmp_path / "h.gmt", min_genes=1, checksum=False)
    miss = res.table("pathway_genes_missing").set_index("symbol")
    assert sorted(miss.index) == ["MCL1", "NOT_A_GENE"]
    assert miss.loc["MCL1", "reason"] == "panel ID maps to another symbol"
    assert miss.loc["MCL1", "panel_gene"] == "ENSG00000143384"
    assert miss.loc["NOT_A_GENE", "reason"] == "not in panel"
    assert res.summary["counts"]["n_pathway_genes_lost_to_ids"] == 1
    assert any("MCL1 (ENSG00000143384)" in w for w in res.summary["warnings"])


@pytest.mark.parametrize("name", ["stpath_genes.yaml", "stpath_genes.txt"])
def test_published_yaml_panel_reads_its_genes_not_its_key(tmp_path, name):
    from gpc_bench.io.genelist import read_gene_list

    p = tmp_path / name
    p.write_text("genes:\n- ENSG00000000003\n- ENSG00000000005\n- ENSG00000000419\n")
    assert read_gene_list(p) == ["ENSG00000000003", "ENSG00000000005", "ENSG00000000419"]


@pytest.mark.parametrize(
    "text, match",
    [('{"genes": ["A", "B"', "not valid JSON"), ("genes: [A, B\n", "not valid YAML"),
     ("A\nB\nA\n", "repeats"), ('{"names": ["A"]}', "expected a JSON list"), ("", "is empty"),
     ('[["A"]]', "must be gene IDs")],
)  # fmt: skip
def test_malformed_gene_lists_are_refused(tmp_path, text, match):
    from gpc_bench import InputError
    from gpc_bench.io.genelist import read_gene_list

    p = tmp_path / ("genes.json" if text.startswith(("{", "[")) else "genes.txt")
    p.write_text(text)
    with pytest.raises(InputError, match=match) as err:
        read_gene_list(p)
    assert str(p) in str(err.value)
