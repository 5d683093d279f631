"""Curation: hand-worked pruning for both orders, a property test, and the published 447 -> 87."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpc_bench import InputError
from gpc_bench.curation import curate, jaccard_prune
from gpc_bench.curation.prune import prune_order

# A (6 genes) ~ B (5 genes): J = 4/7; B ~ C: J = 2/8 = 0.25; A ~ C: J = 1/10; D is disjoint
A = list("abcdef")
B = list("abcdx")
C = list("xdyz") + ["w"]  # 5 genes, ties with B on size
D = list("pqrs")


def kept(records):
    return [r["name"] for r in records if r["kept"]]


def test_largest_first_by_hand():
    rec = jaccard_prune(["A", "B", "C", "D"], [A, B, C, D], tau=0.2, order="largest-first")
    # walk: A(6), B(5), C(5) (tie: name), D(4). B conflicts with A (4/7); C vs A: 1/10 <= 0.2 -> kept
    assert [r["name"] for r in rec] == ["A", "B", "C", "D"]
    assert kept(rec) == ["A", "C", "D"]
    b = rec[1]
    assert b["conflict"] == "A" and b["jaccard"] == pytest.approx(4 / 7)
    c = rec[2]
    assert c["conflict"] is None and c["jaccard"] == pytest.approx(1 / 10)


def test_smallest_first_by_hand():
    rec = jaccard_prune(["A", "B", "C", "D"], [A, B, C, D], tau=0.2, order="smallest-first")
    # walk: D(4), B(5), C(5), A(6). C vs B: |{x,d}| / 8 = 0.25 > 0.2 -> removed; A vs B -> removed
    assert [r["name"] for r in rec] == ["D", "B", "C", "A"]
    assert kept(rec) == ["D", "B"]
    assert rec[2]["conflict"] == "B" and rec[2]["jaccard"] == pytest.approx(0.25)
    assert rec[3]["conflict"] == "B"


def test_tau_is_inclusive_and_ties_by_name():
    rec = jaccard_prune(["Y", "X"], [list("abc"), list("abd")], tau=0.5, order="largest-first")
    assert [r["name"] for r in rec] == ["X", "Y"] and kept(rec) == ["X", "Y"]  # J = 2/4 = 0.5 <= tau
    rec = jaccard_prune(["Y", "X"], [list("abc"), list("abc")], tau=0.5)
    assert kept(rec) == ["X"] and rec[1]["conflict"] == "X" and rec[1]["jaccard"] == 1.0


sets_strategy = st.lists(st.frozensets(st.integers(0, 25), min_size=1, max_size=12), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(
    sets_strategy, st.sampled_from([0.0, 0.1, 0.3, 0.6]), st.sampled_from(["largest-first", "smallest-first"])
)
def test_property_no_kept_pair_exceeds_tau(sets, tau, order):
    names = [f"S{i:02d}" for i in range(len(sets))]
    genes = [sorted(s) for s in sets]
    rec = jaccard_prune(names, genes, tau, order)
    by = dict(zip(names, sets, strict=True))
    keep = [r["name"] for r in rec if r["kept"]]

    def jac(a, b):
        return len(by[a] & by[b]) / len(by[a] | by[b])

    for i, a in enumerate(keep):
        for b in keep[i + 1 :]:
            assert jac(a, b) <= tau
    position = {r["name"]: k for k, r in enumerate(rec)}
    walk = [names[i] for i in prune_order(names, [len(s) for s in sets], order)]
    assert walk == [r["name"] for r in rec]
    for r in rec:
        if not r["kept"]:
            assert r["conflict"] in keep and position[r["conflict"]] < position[r["name"]]
            assert jac(r["name"], r["conflict"]) == pytest.approx(r["jaccard"]) and r["jaccard"] > tau


def test_curate_outputs_and_universe(tmp_path):
    gmt = tmp_path / "c5.go.v2099.1.Hs.symbols.gmt"
    lines = [f"GOBP_SET_{k}\tNA\t" + "\t".join(f"G{(k * 7 + j) % 300}" for j in range(60)) for k in range(12)]
    lines.append("GOCC_SMALL\tNA\t" + "\t".join(f"G{j}" for j in range(10)))
    gmt.write_text("\n".join(lines) + "\n")
    hall = tmp_path / "h.all.v2099.1.Hs.symbols.gmt"
    hall.write_text("HALLMARK_X\tNA\tG1\tG2\nHALLMARK_Y\tNA\tG3\n")
    res = curate(hall, [gmt], out=tmp_path / "coll", jaccard=0.2)
    m = json.loads((tmp_path / "coll" / "manifest.json").read_text())
    assert m["n_sets"] == {"hallmark": 2, "go": len(res.go)}
    assert m["sources"][0]["release"] == "2099.1.Hs"
    assert m["counts"]["go"]["BP"]["size_filtered"] == 12 and m["counts"]["go"]["CC"]["read"] == 1
    pruned = (tmp_path / "coll" / "pruned.csv").read_text().splitlines()
    assert pruned[0] == "namespace,name,size,kept,conflict,jaccard" and len(pruned) == 13
    assert (tmp_path / "coll" / "hallmark.gmt").read_text().startswith("HALLMARK_X\tNA\tG1\tG2")
    uni = tmp_path / "u.txt"
    uni.write_text("\n".join(f"G{j}" for j in range(150)))
    small = curate(hall, [gmt], universe=uni, min_size=20)
    assert all(len(s.genes) >= 20 and all(int(g[1:]) < 150 for g in s.genes) for s in small.go)
    none = tmp_path / "none.txt"
    none.write_text("TP53\nEGFR\n")
    with pytest.raises(InputError, match="no GO set has 50-100 genes"):
        curate(go=[gmt], universe=none)


def test_shared_published_counts(shared_data):
    res = curate(go=[shared_data / "histoprism" / "go_filtered_447.gmt"])
    assert len(res.pruned) == 447 and len(res.go) == 87
    hall = curate(shared_data / "msigdb" / "h.all.v2025.1.Hs.symbols.gmt")
    assert len(hall.hallmark) == 50


def test_shared_go_consortium_files_match_shipped_default(shared_data):
    """goatools on the OBO + gene2go of the same GO release rebuilds the shipped GO sets exactly.

    The shipped collection comes from Bioconductor's SQLite tables (pathways/build_default.py),
    this path from the Consortium's own files through goatools: two independent propagations.
    """
    from gpc_bench.io.gmt import collection_id, default_collection_path, load_pathways

    go = shared_data / "go"
    res = curate(
        go_obo=go / "go-basic.2022-07-01.obo.gz", go_annotations=go / "gene2go.human.2022-09-12.tsv.gz"
    )
    assert all(s.description.startswith("GO:") for s in res.go)
    obo = [s for s in res.manifest["sources"] if s["kind"] == "go_obo"][0]
    assert obo["release"] == "releases/2022-07-01"
    shipped = [s for s in load_pathways(default_collection_path()).sets if s.collection == "go"]
    assert [s.name for s in res.go] == [s.name for s in shipped]
    assert collection_id(res.go) == collection_id(shipped)


def test_a_further_collection_is_filtered_pruned_and_scored_apart(tmp_path):
    """curate --collection NAME=FILE.gmt: the same universe step, size filter and Jaccard pruning as
    GO, within the collection; written as NAME.gmt and reported as its own collection."""
    from click.testing import CliRunner

    from gpc_bench import load_pathways
    from gpc_bench.cli import main
    from gpc_bench.io.gmt import GeneSet, write_gmt

    genes = [f"G{i:04d}" for i in range(400)]
    sets = [
        GeneSet("x", "REACTOME_A", tuple(genes[0:60])),
        GeneSet("x", "REACTOME_A_COPY", tuple(genes[2:62])),  # Jaccard 0.94 with A: pruned
        GeneSet("x", "REACTOME_B", tuple(genes[100:170])),
        GeneSet("x", "REACTOME_SMALL", tuple(genes[200:210])),  # under 50 genes: filtered
    ]
    write_gmt(tmp_path / "c2.cp.reactome.gmt", sets)
    write_gmt(tmp_path / "h.gmt", [GeneSet("hallmark", "HALLMARK_X", tuple(genes[300:360]))])
    out = tmp_path / "coll"
    extra = f"reactome={tmp_path / 'c2.cp.reactome.gmt'}"
    args = ["curate", "--hallmark", str(tmp_path / "h.gmt"), "--collection", extra, "--out", str(out)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    coll = load_pathways(out)
    assert sorted(coll.collections) == ["hallmark", "reactome"]
    kept = sorted(s.name for s in coll.sets if s.collection == "reactome")
    assert kept == ["REACTOME_A", "REACTOME_B"] or kept == ["REACTOME_A_COPY", "REACTOME_B"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n_sets"]["reactome"] == 2 and manifest["counts"]["reactome"]["reactome"]["read"] == 4
    bad = CliRunner().invoke(main, ["curate", "--collection", "go=x.gmt", "--out", str(tmp_path / "o2")])
    assert bad.exit_code != 0 and "other than hallmark and go" in bad.output


def test_a_further_collection_from_a_real_gmt(shared_data, tmp_path):
    from gpc_bench.curation import curate

    gmt = shared_data / "msigdb" / "c5.cc.v6.2.symbols.gmt"
    res = curate(collections={"cc62": gmt}, out=tmp_path / "c")
    sizes = [len(s.genes) for s in res.extra["cc62"]]
    assert res.extra["cc62"] and min(sizes) >= 50 and max(sizes) <= 100
    kept = res.pruned[(res.pruned["namespace"] == "cc62") & res.pruned["kept"]]
    assert len(kept) == len(sizes) and res.manifest["sources"][0]["collection"] == "cc62"
