"""The shipped gpc-default collection, the script that builds it, and `gpc-bench pathways`."""

from __future__ import annotations

import json
import sqlite3
from itertools import combinations

import pytest
from click.testing import CliRunner

from gpc_bench.cli import main
from gpc_bench.io.gmt import collection_id, default_collection_path, load_pathways
from gpc_bench.pathways import build_default as bd


@pytest.fixture(scope="module")
def default():
    path = default_collection_path()
    assert path is not None, "pathways/gpc-default is missing: run python pathways/build_default.py"
    return path, load_pathways(path)


def test_default_collection_is_consistent(default):
    path, coll = default
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["collection_id"] == coll.collection_id == collection_id(coll.sets)
    hall = [s for s in coll.sets if s.collection == "hallmark"]
    go = [s for s in coll.sets if s.collection == "go"]
    assert len(hall) == 50 and all(s.name.startswith("HALLMARK_") for s in hall)
    assert len(go) == manifest["n_sets"]["go"] > 100
    assert all(50 <= len(s.genes) <= 100 for s in go)
    assert all(s.description.startswith("GO:") for s in go)
    # no two kept GO sets overlap above tau (checked pairwise, independently of the pruning code)
    gs = [set(s.genes) for s in go]
    worst = max(len(a & b) / len(a | b) for a, b in combinations(gs, 2))
    assert worst <= manifest["parameters"]["jaccard"]
    assert {u["package"].split("=")[0] for u in manifest["upstream"]} >= {"r-bioc-go.db", "omicverse"}


def test_score_uses_default_collection(default, cohort, tmp_path):
    """Without pathways, score uses the shipped collection and records its id."""
    from gpc_bench import score

    _, coll = default
    symbols = list(dict.fromkeys(g for s in coll.sets for g in s.genes))[: cohort.truth.n_vars]
    paths = {}
    for key, adata in (("truth", cohort.truth), ("good", cohort.predictions["good"])):
        a = adata.copy()
        a.var_names = symbols
        paths[key] = tmp_path / f"{key}.h5ad"
        a.write_h5ad(paths[key])
    res = score(paths["good"], paths["truth"], checksum=False)
    assert res.summary["pathways"]["collection_id"] == coll.collection_id
    scored = res.pathway_scores
    assert set(scored["collection"]) == {"hallmark", "go"}
    assert len(scored) == len(coll.sets) and (scored["n_in_panel"] > 0).any()


def _toy_go_db(path):
    con = sqlite3.connect(path)
    con.executescript(
        """
        create table go_term (_id integer, go_id text, term text, ontology text);
        create table go_bp_parents (_id integer, _parent_id integer, relationship_type text);
        insert into go_term values (1,'GO:1','root process','BP'), (2,'GO:2','mid process','BP'),
            (3,'GO:3','leaf process','BP'), (4,'GO:4','regulation of leaf process','BP');
        insert into go_bp_parents values (2,1,'isa'), (3,2,'part of'), (4,3,'regulates');
        """
    )
    con.commit()
    con.close()


def _toy_org_db(path):
    con = sqlite3.connect(path)
    con.executescript(
        """
        create table gene_info (_id integer, symbol text);
        create table go_bp (_id integer, go_id text, evidence text);
        insert into gene_info values (1,'AAA'), (2,'BBB'), (3,'CCC');
        insert into go_bp values (1,'GO:3','IDA'), (2,'GO:2','IEA'), (3,'GO:4','IMP'), (3,'GO:1','ND');
        """
    )
    con.commit()
    con.close()


def test_propagation_follows_is_a_and_part_of_only(tmp_path):
    _toy_go_db(tmp_path / "go.sqlite")
    _toy_org_db(tmp_path / "org.sqlite")
    sets = bd.propagated_sets(tmp_path / "go.sqlite", tmp_path / "org.sqlite", "BP")
    # AAA on the leaf reaches mid (part_of) and root (is_a); CCC's regulation term does not reach
    # the leaf (regulates is not followed); CCC's ND annotation to the root is dropped
    assert sets == {
        "GO:3": {"AAA"},
        "GO:2": {"AAA", "BBB"},
        "GO:1": {"AAA", "BBB"},
        "GO:4": {"CCC"},
    }
    with_nd = bd.propagated_sets(tmp_path / "go.sqlite", tmp_path / "org.sqlite", "BP", exclude=())
    assert with_nd["GO:1"] == {"AAA", "BBB", "CCC"}


def test_pathways_list_and_show_cli(default):
    runner = CliRunner()
    res = runner.invoke(main, ["-q", "pathways", "list", "--collection", "hallmark"])
    assert res.exit_code == 0, res.output
    assert "collection_id  " + default[1].collection_id in res.output
    rows = [ln for ln in res.output.splitlines() if ln.split()[:1] == ["hallmark"]]
    assert len(rows) == 50 and all("HALLMARK_" in r for r in rows)
    res = runner.invoke(main, ["-q", "pathways", "show", "HALLMARK_HYPOXIA"])
    assert res.exit_code == 0 and "(hallmark, 200 genes)" in res.output and "PGK1" in res.output
    go = next(s for s in default[1].sets if s.collection == "go")
    res = runner.invoke(main, ["-q", "pathways", "show", go.name])
    assert f"(go, {len(go.genes)} genes)" in res.output and "kept" in res.output
    res = runner.invoke(main, ["-q", "pathways", "show", "HYPOXIA"])
    assert res.exit_code == 2 and "HALLMARK_HYPOXIA" in res.output
