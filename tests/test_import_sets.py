"""Importing HistoPrism's released pathway pickles, through a restricted unpickler."""

from __future__ import annotations

import os
import pickle

import pytest
from click.testing import CliRunner

from gpc_bench import InputError, load_pathways
from gpc_bench.cli import main
from gpc_bench.curation.histoprism import import_histoprism, read_set_pickle


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_pickle_that_would_call_a_function_is_refused(tmp_path):
    p = tmp_path / "evil.pkl"
    p.write_bytes(pickle.dumps({"HALLMARK_X": ["A", _Evil()]}))
    with pytest.raises(InputError, match=r"refusing to load (posix|nt|os)\.system"):
        read_set_pickle(p)
    p.write_bytes(pickle.dumps({"HALLMARK_X": {"A": 1}}))
    with pytest.raises(InputError, match="dict of set name"):
        read_set_pickle(p)
    for proto in (0, 2, 5):  # sets and tuples written by old protocols name builtins: allowed
        p.write_bytes(pickle.dumps({"S": {"A", "B"}, "T": ("C",)}, protocol=proto))
        assert {k: sorted(v) for k, v in read_set_pickle(p).items()} == {"S": ["A", "B"], "T": ["C"]}


def test_import_writes_a_collection_that_score_reads(tmp_path):
    (tmp_path / "final_hallmark_genes.pkl").write_bytes(
        pickle.dumps({"HALLMARK_B": ["TP53", "EGFR", "TP53"], "HALLMARK_A": ["MYC"]})
    )
    (tmp_path / "final_GO_genes_mapped.pkl").write_bytes(
        pickle.dumps({"GOBP_X": ["ENSG00000141510", "ENSG00000146648", "ENSG99999999999"]})
    )
    res = CliRunner().invoke(
        main,
        ["pathways", "import", "histoprism", str(tmp_path / "final_hallmark_genes.pkl"),
         str(tmp_path / "final_GO_genes_mapped.pkl"), "--out", str(tmp_path / "coll")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    coll = load_pathways(tmp_path / "coll")
    sets = {s.name: s for s in coll.sets}
    assert sets["HALLMARK_B"].genes == ("TP53", "EGFR") and sets["HALLMARK_B"].collection == "hallmark"
    assert sets["GOBP_X"].collection == "go" and set(sets["GOBP_X"].genes) == {"TP53", "EGFR"}
    m = coll.manifest
    assert m["collection_id"] == coll.collection_id
    go = next(s for s in m["sources"] if s["collection"] == "go")
    assert (
        go["gene_id_style"] == "ensembl"
        and go["genes_without_symbol_dropped"] == 1
        and len(go["sha256"]) == 64
    )


def test_the_published_pickles(shared_data, tmp_path):
    d = shared_data / "histoprism" / "published_sets"
    m = import_histoprism([d / "final_hallmark_genes.pkl", d / "final_GO_genes.pkl"], tmp_path / "pub")
    assert m["collections"] == {"hallmark": 50, "go": 87}
    hall = next(s for s in m["sources"] if s["collection"] == "hallmark")
    assert hall["set_sizes"] == [8, 83]
    sets = {s.name: s for s in load_pathways(tmp_path / "pub").sets}
    assert len(sets["HALLMARK_ADIPOGENESIS"].genes) == 60
