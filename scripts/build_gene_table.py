"""Build the symbol <-> Ensembl table that gpc-bench ships.

Source: Debian's ``r-bioc-org.hs.eg.db`` package (Bioconductor org.Hs.eg.db),
which anyone can fetch with ``apt-get download``.  It contains a SQLite file
with NCBI Gene symbols, Ensembl gene IDs and aliases.

Usage::

    python scripts/build_gene_table.py            # downloads with apt-get
    python scripts/build_gene_table.py --deb r-bioc-org.hs.eg.db_3.16.0-1_all.deb

Writes ``gpc_bench/data/ensembl_symbol.tsv.gz``, ``alias_symbol.tsv.gz``, ``entrez_symbol.tsv.gz``,
``ensembl_ambiguous.tsv.gz`` and ``gpc_bench/data/gene_ids.json`` (provenance).  Output is
deterministic.

An Ensembl ID that NCBI maps to several genes (350 in the 2022 release: MCL1's ID also to the
antisense ncRNA ADAMTSL4-AS1, RUNX1's to LOC100506403, KLRK1's to the read-through KLRC4-KLRK1)
gets the symbol Ensembl and HGNC give it, by a fixed rule: the protein-coding gene first, then a
gene that has no other Ensembl ID of its own, then a gene before a read-through named after it,
then a named gene before a ``LOC`` placeholder, then by gene type (ncRNA, then the others) and
symbol. ``ensembl_symbol.tsv.gz`` keeps every pair,
each ID's rows in that order (the first is the ID's symbol); ``ensembl_ambiguous.tsv.gz`` lists
the ambiguous IDs with the chosen symbol and the others.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sqlite3
import subprocess
import tempfile
from pathlib import Path

PACKAGE = "r-bioc-org.hs.eg.db"
VERSION = "3.16.0-1"
OUT = Path(__file__).resolve().parents[1] / "gpc_bench" / "data"


def _download(workdir: Path) -> Path:
    subprocess.run(["apt-get", "download", f"{PACKAGE}={VERSION}"], cwd=workdir, check=True)
    (deb,) = workdir.glob(f"{PACKAGE}_*.deb")
    return deb


def _write_tsv_gz(path: Path, header: tuple[str, str], rows: list[tuple[str, str]]) -> None:
    text = "\t".join(header) + "\n" + "".join(f"{a}\t{b}\n" for a, b in rows)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(text.encode())


#: gene types in the order a symbol is preferred for an ambiguous Ensembl ID (then any other)
TYPE_ORDER = ("protein-coding", "ncRNA", "snRNA", "snoRNA", "scRNA", "rRNA", "tRNA", "other", "pseudo")


def _preference(symbol: str, gene_type: str | None, candidates, owned: set[str]) -> tuple:
    kind = TYPE_ORDER.index(gene_type) if gene_type in TYPE_ORDER else len(TYPE_ORDER)
    # a gene that has an Ensembl ID of its own elsewhere (SCHIP1) yields this one to the other
    # candidate (IQCJ-SCHIP1); a read-through named after its parts (KLRC4-KLRK1) yields to the part
    readthrough = "-" in symbol and any(p in candidates for p in symbol.split("-") if p != symbol)
    return (kind, symbol in owned, readthrough, symbol.startswith("LOC"), symbol)


def _ordered(rows) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """(ensembl_id, symbol, gene_type) rows -> pairs with each ID's preferred symbol first, and
    the ambiguous IDs (ensembl_id, chosen, the others joined by ``|``)."""
    by_id: dict[str, dict[str, str | None]] = {}
    for ens, sym, kind in rows:
        by_id.setdefault(ens, {})[sym] = kind
    owned = {next(iter(c)) for c in by_id.values() if len(c) == 1}  # the only symbol of some ID
    pairs, ambiguous = [], []
    for ens in sorted(by_id):
        syms = sorted(by_id[ens], key=lambda s: _preference(s, by_id[ens][s], by_id[ens], owned))
        pairs += [(ens, s) for s in syms]
        if len(syms) > 1:
            ambiguous.append((ens, syms[0], "|".join(syms[1:])))
    return pairs, ambiguous


def build(deb: Path, out: Path = OUT) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        (db,) = Path(tmp).rglob("org.Hs.eg.sqlite")
        con = sqlite3.connect(db)
        meta = dict(con.execute("select name, value from metadata"))
        ens, ambiguous = _ordered(
            con.execute(
                "select e.ensembl_id, g.symbol, t.gene_type from ensembl e join gene_info g on g._id = e._id "
                "left join genetype t on t._id = e._id"
            )
        )
        alias = sorted(
            set(
                con.execute(
                    "select a.alias_symbol, g.symbol from alias a "
                    "join gene_info g on g._id = a._id where a.alias_symbol != g.symbol"
                )
            )
        )
        entrez = sorted(
            set(con.execute("select g.gene_id, i.symbol from genes g join gene_info i on i._id = g._id")),
            key=lambda r: (int(r[0]), r[1]),
        )
        con.close()
    out.mkdir(parents=True, exist_ok=True)
    _write_tsv_gz(out / "ensembl_symbol.tsv.gz", ("ensembl_id", "symbol"), ens)
    _write_tsv_gz(out / "alias_symbol.tsv.gz", ("alias", "symbol"), alias)
    _write_tsv_gz(out / "entrez_symbol.tsv.gz", ("entrez_id", "symbol"), entrez)
    text = "ensembl_id\tsymbol\tothers\n" + "".join("\t".join(r) + "\n" for r in ambiguous)
    with (
        open(out / "ensembl_ambiguous.tsv.gz", "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh,
    ):
        fh.write(text.encode())
    info = {
        "source": f"Debian package {PACKAGE} {VERSION} (Bioconductor org.Hs.eg.db)",
        "deb_sha256": hashlib.sha256(deb.read_bytes()).hexdigest(),
        "ncbi_gene_date": meta.get("EGSOURCEDATE"),
        "ensembl_date": meta.get("ENSOURCEDATE"),
        "n_ensembl_symbol": len(ens),
        "n_alias_symbol": len(alias),
        "n_entrez_symbol": len(entrez),
        "n_ensembl_ambiguous": len(ambiguous),
        "ambiguous_rule": "protein-coding first, then a gene without another Ensembl ID of its own, then a "
        "gene before a read-through named after it, then a named gene before LOC, then gene type, "
        "then symbol",
        "rebuild": "python scripts/build_gene_table.py",
    }
    (out / "gene_ids.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deb", type=Path, help="an already downloaded .deb (else apt-get download)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.deb is None:
        with tempfile.TemporaryDirectory() as tmp:
            info = build(_download(Path(tmp)), args.out)
    else:
        info = build(args.deb, args.out)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
