"""Build the shipped default pathway collection ``pathways/gpc-default/``.

Sources (all installable from a package registry; nothing is taken from elsewhere):

* GO: Debian's ``r-bioc-go.db`` (GO release 2022-07-01: term names and the ``is_a`` /
  ``part_of`` graph) and ``r-bioc-org.hs.eg.db`` (NCBI gene2go of 2022-09-12: direct human
  annotations, with evidence codes), fetched with ``apt-get download``.
* Hallmark: ``h.all.v7.5.1.symbols.gmt`` (MSigDB 7.5.1) from the PyPI wheel
  ``omicverse==1.7.9``, fetched with ``pip download --no-deps``.

Direct annotations are propagated to every ancestor over ``is_a`` and ``part_of`` (the
true-path rule, the same rule ``gpc-bench curate --go-obo`` applies with goatools), ND
evidence is dropped, and the sets are then curated with ``gpc_bench.curate`` at the default
parameters and no universe.

Usage::

    python pathways/build_default.py                       # downloads into a temporary folder
    python pathways/build_default.py --downloads DIR       # reuse (or fill) a download folder

The output is deterministic: rebuilding from the same packages gives byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

DEBS = {"r-bioc-go.db": "3.16.0-1", "r-bioc-org.hs.eg.db": "3.16.0-1"}
WHEEL = ("omicverse", "1.7.9", "omicverse/data_files/h.all.v7.5.1.symbols.gmt")
OUT = Path(__file__).resolve().parent / "gpc-default"
NAMESPACES = ("BP", "CC", "MF")
PROPAGATE_OVER = ("isa", "part of")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(downloads: Path) -> dict[str, Path]:
    """Download the two Debian packages and the wheel into ``downloads`` (kept when present)."""
    downloads.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    for pkg, version in DEBS.items():
        debs = sorted(downloads.glob(f"{pkg}_{version}_*.deb"))
        if not debs:
            subprocess.run(["apt-get", "download", f"{pkg}={version}"], cwd=downloads, check=True)
            debs = sorted(downloads.glob(f"{pkg}_{version}_*.deb"))
        found[pkg] = debs[0]
    name, version, _ = WHEEL
    wheels = sorted(downloads.glob(f"{name}-{version}-*.whl"))
    if not wheels:
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(downloads)]
        subprocess.run([*pip, f"{name}=={version}"], check=True)
        wheels = sorted(downloads.glob(f"{name}-{version}-*.whl"))
    found[name] = wheels[0]
    return found


def go_term_table(go_db: Path) -> dict[str, tuple[str, str]]:
    """GO id -> (namespace, term name) from ``GO.sqlite``."""
    con = sqlite3.connect(go_db)
    rows = con.execute("select go_id, ontology, term from go_term where ontology in ('BP','CC','MF')")
    out = {go: (ns, term) for go, ns, term in rows}
    con.close()
    return out


def go_parents(go_db: Path, namespace: str) -> dict[str, set[str]]:
    """Child -> parents over ``is_a`` and ``part_of`` within one namespace."""
    con = sqlite3.connect(go_db)
    marks = ",".join("?" * len(PROPAGATE_OVER))
    rows = con.execute(
        f"select t1.go_id, t2.go_id from go_{namespace.lower()}_parents p "
        "join go_term t1 on t1._id = p._id join go_term t2 on t2._id = p._parent_id "
        f"where p.relationship_type in ({marks})",
        PROPAGATE_OVER,
    )
    parents: dict[str, set[str]] = defaultdict(set)
    for child, parent in rows:
        parents[child].add(parent)
    con.close()
    return parents


def ancestors(parents: dict[str, set[str]]):
    """A memoised closure ``term -> {term and all its ancestors}``."""
    memo: dict[str, frozenset[str]] = {}

    def up(term: str) -> frozenset[str]:
        if term not in memo:
            stack, seen = [term], {term}
            while stack:
                for p in parents.get(stack.pop(), ()):
                    if p not in seen:
                        seen.add(p)
                        stack.append(p)
            memo[term] = frozenset(seen)
        return memo[term]

    return up


def direct_annotations(org_db: Path, namespace: str, exclude=("ND",)) -> list[tuple[str, str]]:
    """(symbol, GO id) pairs of direct human annotations, minus excluded evidence codes."""
    con = sqlite3.connect(org_db)
    marks = ",".join("?" * len(exclude)) or "''"
    rows = con.execute(
        f"select distinct g.symbol, a.go_id from go_{namespace.lower()} a "
        f"join gene_info g on g._id = a._id where a.evidence not in ({marks})",
        tuple(exclude),
    ).fetchall()
    con.close()
    return rows


def propagated_sets(go_db: Path, org_db: Path, namespace: str, exclude=("ND",)) -> dict[str, set[str]]:
    """GO id -> gene symbols, with each annotation propagated to all ancestors."""
    up = ancestors(go_parents(go_db, namespace))
    sets: dict[str, set[str]] = defaultdict(set)
    for symbol, go in direct_annotations(org_db, namespace, exclude):
        for term in up(go):
            sets[term].add(symbol)
    return sets


def write_go_gmts(go_db: Path, org_db: Path, folder: Path, exclude=("ND",)) -> list[Path]:
    """One MSigDB-style GMT per namespace (``GOBP_...`` names, the GO id as description)."""
    from gpc_bench.curation.sources import disambiguate, msigdb_name
    from gpc_bench.io.gmt import GeneSet, write_gmt

    terms = go_term_table(go_db)
    paths = []
    for ns in NAMESPACES:
        sets = propagated_sets(go_db, org_db, ns, exclude)
        out = [
            GeneSet("go", msigdb_name(terms[go][1], ns), tuple(sorted(genes)), go)
            for go, genes in sorted(sets.items())
            if go in terms and terms[go][0] == ns
        ]
        out = disambiguate(out)  # distinct terms whose names collapse to one get their id appended
        path = folder / f"c5.go.{ns.lower()}.gmt"
        write_gmt(path, sorted(out, key=lambda s: s.name))
        paths.append(path)
    return paths


def build(downloads: Path, out: Path = OUT) -> dict:
    from gpc_bench import curate

    files = fetch(downloads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for pkg in DEBS:
            subprocess.run(["dpkg-deb", "-x", str(files[pkg]), str(tmp / pkg)], check=True)
        (go_db,) = (tmp / "r-bioc-go.db").rglob("GO.sqlite")
        (org_db,) = (tmp / "r-bioc-org.hs.eg.db").rglob("org.Hs.eg.sqlite")
        with sqlite3.connect(go_db) as con:
            go_meta = dict(con.execute("select name, value from metadata"))
        with sqlite3.connect(org_db) as con:
            org_meta = dict(con.execute("select name, value from metadata"))
        gmts = write_go_gmts(go_db, org_db, tmp)
        hallmark = tmp / Path(WHEEL[2]).name
        with zipfile.ZipFile(files[WHEEL[0]]) as zf:
            hallmark.write_bytes(zf.read(WHEEL[2]))
        res = curate(hallmark=hallmark, go=gmts)
    release = f"GO {go_meta['GOSOURCEDATE']}; NCBI gene2go {org_meta['GOEGSOURCEDATE']}"
    for src in res.manifest["sources"]:
        if src["kind"] == "msigdb_go":
            src["kind"] = "go_bioconductor"
            src["release"] = release
    res.manifest["upstream"] = [
        {
            "package": f"{pkg}={ver} (Debian)",
            "file": files[pkg].name,
            "sha256": _sha256(files[pkg]),
        }
        for pkg, ver in DEBS.items()
    ] + [
        {
            "package": f"{WHEEL[0]}=={WHEEL[1]} (PyPI)",
            "file": files[WHEEL[0]].name,
            "member": WHEEL[2],
            "sha256": _sha256(files[WHEEL[0]]),
        }
    ]
    res.manifest["go_release"] = {
        "ontology": go_meta["GOSOURCEDATE"],
        "ontology_url": go_meta["GOSOURCEURL"],
        "gene2go": org_meta["GOEGSOURCEDATE"],
        "gene2go_url": org_meta["GOEGSOURCEURL"],
        "propagation": "direct annotations propagated to all ancestors over is_a and part_of",
    }
    res.manifest["name"] = "gpc-default"
    res.manifest["license"] = "MSigDB Hallmark and Gene Ontology data: CC BY 4.0 (see README.md)"
    res.manifest["rebuild"] = "python pathways/build_default.py"
    res.write(out, overwrite=True)
    return res.manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--downloads", type=Path, help="folder for the downloaded packages (kept)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.downloads is None:
        with tempfile.TemporaryDirectory() as tmp:
            manifest = build(Path(tmp), args.out)
    else:
        manifest = build(args.downloads, args.out)
    print(json.dumps({k: manifest[k] for k in ("collection_id", "n_sets", "counts")}, indent=2))


if __name__ == "__main__":
    main()
