"""Gene set sources: MSigDB GMT files and the GO Consortium's OBO + annotations (goatools)."""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import logging
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .._errors import InputError, examples
from ..io.checksum import sha256_file
from ..io.gmt import GeneSet, read_gmt

logger = logging.getLogger(__name__)

NAMESPACES = {"BP": "biological_process", "CC": "cellular_component", "MF": "molecular_function"}
_PREFIX = {"GOBP_": "BP", "GOCC_": "CC", "GOMF_": "MF"}


def msigdb_release(path: Path) -> str | None:
    """The MSigDB release in a file name: ``h.all.v2025.1.Hs.symbols.gmt`` -> ``2025.1.Hs``."""
    m = re.search(r"\.v(\d+(?:\.\d+)*(?:\.(?:Hs|Mm))?)\.", Path(path).name)
    return m.group(1) if m else None


def msigdb_name(term: str, namespace: str) -> str:
    """MSigDB-style set name: ``GOBP_`` + upper-cased term name, non-alphanumerics as ``_``."""
    body = re.sub(r"[^A-Z0-9]+", "_", term.upper()).strip("_")
    return f"GO{namespace}_{body}"


def disambiguate(sets: list[GeneSet]) -> list[GeneSet]:
    """Distinct GO terms whose MSigDB-style names collide (``NAD binding`` / ``NAD+ binding``)
    get their GO id appended (``GOMF_NAD_BINDING_GO0051287``); other names are unchanged."""
    counts: dict[str, int] = {}
    for s in sets:
        counts[s.name] = counts.get(s.name, 0) + 1
    return [
        s
        if counts[s.name] == 1
        else GeneSet(s.collection, f"{s.name}_{s.description.replace(':', '')}", s.genes, s.description)
        for s in sets
    ]


def source_record(path: Path, kind: str, release: str | None) -> dict:
    return {"kind": kind, "file": Path(path).name, "sha256": sha256_file(path), "release": release}


def read_hallmark(path: str | Path) -> tuple[list[GeneSet], dict]:
    """Hallmark sets from an MSigDB ``h.all.*.gmt``."""
    path = Path(path)
    sets = [GeneSet("hallmark", n, g, d) for n, d, g in read_gmt(path)]
    return sets, source_record(path, "msigdb_hallmark", msigdb_release(path))


def _gmt_namespace(name: str, path: Path) -> str | None:
    for prefix, ns in _PREFIX.items():
        if name.startswith(prefix):
            return ns
    m = re.search(r"c5\.(bp|cc|mf)\b", path.name, re.I)  # old 6.x files: GO_ names, c5.bp/cc/mf files
    return m.group(1).upper() if m else None


def read_go_gmt(paths: Sequence[str | Path]) -> tuple[list[tuple[str, GeneSet]], list[dict]]:
    """GO sets from MSigDB GMTs (``GOBP_``/``GOCC_``/``GOMF_`` or the old ``GO_`` style).

    Returns (namespace, set) pairs; the namespace is ``None`` when it cannot be told
    (an old-style combined file).
    """
    out, records = [], []
    for p in paths:
        p = Path(p)
        for n, d, g in read_gmt(p):
            out.append((_gmt_namespace(n, p), GeneSet("go", n, g, d)))
        records.append(source_record(p, "msigdb_go", msigdb_release(p)))
    return out, records


def _open_text(path: Path) -> Path:
    """goatools reads plain files: gunzip ``.gz`` into a temporary file."""
    if path.suffix != ".gz":
        return path
    tmp = Path(tempfile.mkdtemp(prefix="gpc-bench-")) / path.stem
    with gzip.open(path, "rb") as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return tmp


def obo_data_version(path: Path) -> str | None:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        for line in fh:
            if line.startswith("data-version:"):
                return line.split(":", 1)[1].strip()
            if line.startswith("[Term]"):
                return None
    return None


def go_from_consortium(
    obo: str | Path,
    annotations: str | Path,
    namespaces: Sequence[str] = ("BP", "CC", "MF"),
    evidence_exclude: Sequence[str] | None = ("ND",),
    symbols: dict[str, str] | None = None,
) -> tuple[list[tuple[str, GeneSet]], list[dict]]:
    """GO sets from an OBO file and human annotations (NCBI gene2go or GAF), read with goatools.

    Annotations are propagated to all ancestors over ``is_a`` and ``part_of`` (true-path
    rule); NOT-qualified annotations are dropped; evidence codes in ``evidence_exclude`` are
    dropped.  gene2go identifies genes by NCBI GeneID; they are named by HGNC symbol through
    ``symbols`` (GeneID -> symbol; default: the shipped table's source, org.Hs.eg.db).
    """
    from goatools.anno.gaf_reader import GafReader
    from goatools.anno.genetogo_reader import Gene2GoReader
    from goatools.obo_parser import GODag

    obo, annotations = Path(obo), Path(annotations)
    for p in (obo, annotations):
        if not p.is_file():
            raise InputError(f"GO file not found: {p}")
    obo_txt, ann_txt = _open_text(obo), _open_text(annotations)
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        dag = GODag(str(obo_txt), optional_attrs={"relationship"}, load_obsolete=False, prt=None)
        is_gaf = not ann_txt.name.startswith("gene2go") and _looks_like_gaf(ann_txt)
        reader = (
            GafReader(str(ann_txt), godag=dag)
            if is_gaf
            else Gene2GoReader(str(ann_txt), taxids=[9606], godag=dag)
        )
    _check_versions(dag, reader, obo, annotations)
    exclude = set(evidence_exclude or ())
    kws = {"propagate_counts": True, "relationships": {"part_of"}, "prt": None}
    if exclude:
        kws["ev_exclude"] = exclude
    kws["keep_ND"] = "ND" not in exclude
    if is_gaf:  # GAF rows are keyed by DB object id (UniProt); name genes by their symbol column
        symbols = {str(nt.DB_ID): nt.DB_Symbol for nt in reader.associations}
    out: list[tuple[str, GeneSet]] = []
    missing_ns = []
    for ns in namespaces:
        with contextlib.redirect_stdout(quiet):
            go2genes = reader.get_id2gos(namespace=ns, go2geneids=True, **kws)
        if not go2genes:
            missing_ns.append(ns)
        ns_sets = []
        for goid, genes in sorted(go2genes.items()):
            term = dag.get(goid)
            if term is None:
                continue
            names = sorted({_gene_name(g, symbols) for g in genes} - {""})
            if names:
                ns_sets.append(GeneSet("go", msigdb_name(term.name, ns), tuple(names), goid))
        out += [(ns, s) for s in disambiguate(ns_sets)]
    if missing_ns:
        raise InputError(
            f"no annotations for GO namespaces {missing_ns} in {annotations} against {obo}",
            "check that the OBO and the annotation file are of matching releases and species (human)",
        )
    records = [
        source_record(obo, "go_obo", obo_data_version(obo)),
        source_record(annotations, "gaf" if is_gaf else "gene2go", _gaf_date(ann_txt) if is_gaf else None),
    ]
    return out, records


MAX_UNKNOWN_TERMS = 0.01


def _check_versions(dag, reader, obo: Path, annotations: Path) -> None:
    """Refuse annotations made against a different GO release than the OBO.

    Annotations to GO ids that the OBO does not know (neither as a term nor as an alt_id) mean
    the annotation file is newer than the ontology: propagation would silently lose them.
    More than ``MAX_UNKNOWN_TERMS`` of the annotated ids missing is an error.
    """
    used = {nt.GO_ID for nt in reader.associations}
    if not used:
        raise InputError(f"{annotations} holds no human annotations", "give NCBI gene2go or a human GAF")
    unknown = sorted(go for go in used if go not in dag)
    if len(unknown) > MAX_UNKNOWN_TERMS * len(used):
        raise InputError(
            f"{len(unknown)} of {len(used)} GO terms annotated in {annotations.name} are not in "
            f"{obo.name} (data-version {obo_data_version(obo)}), e.g. {examples(unknown)}: "
            "the ontology and the annotations are from different GO releases",
            "use an OBO and annotations of one release (gpc-bench curate --go-release DATE fetches a pair)",
        )
    if unknown:
        logger.warning("%d annotated GO terms are not in %s and are skipped", len(unknown), obo.name)


def _gaf_date(path: Path) -> str | None:
    with open(path) as fh:
        for line in fh:
            if not line.startswith("!"):
                return None
            if line.lower().startswith("!date-generated:"):
                return line.split(":", 1)[1].strip()
    return None


def _looks_like_gaf(path: Path) -> bool:
    with open(path) as fh:
        for line in fh:
            if line.startswith("!"):
                return True
            return len(line.split("\t")) >= 15
    return False


def _gene_name(gene, symbols: dict[str, str] | None) -> str:
    """The symbol of an annotated gene: GAF rows by their symbol column, gene2go by GeneID."""
    if symbols is not None and str(gene) in symbols:
        return symbols[str(gene)]
    if isinstance(gene, int) or str(gene).isdigit():
        return entrez_to_symbol().get(str(gene), "") if symbols is None else ""
    return str(gene)


@functools.cache
def entrez_to_symbol() -> dict[str, str]:
    """NCBI GeneID -> symbol (needs the optional table ``entrez_symbol.tsv.gz``)."""
    from importlib import resources

    raw = resources.files("gpc_bench.data").joinpath("entrez_symbol.tsv.gz").read_bytes()
    rows = gzip.decompress(raw).decode().splitlines()[1:]
    return dict(tuple(r.split("\t")) for r in rows)
