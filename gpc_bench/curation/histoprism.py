"""Import the pathway sets the HistoPrism paper scored (its released pickles) as a collection folder.

The paper released ``final_hallmark_genes.pkl`` and ``final_GO_genes.pkl`` (a dict of set name to a
list of HGNC symbols) and ``*_mapped.pkl`` (the same with Ensembl IDs). Pickles can run code when
loaded, so they are read with a restricted unpickler that accepts only dicts, lists, tuples, sets
and strings, and refuses anything else.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from pathlib import Path

from .._errors import InputError
from .._version import __version__

#: the only globals a set pickle may name (protocols 0-2 build sets and tuples through them)
_ALLOWED = {("builtins", n) for n in ("set", "frozenset", "list", "dict", "tuple", "str")} | {
    ("__builtin__", n) for n in ("set", "frozenset", "list", "dict", "tuple", "unicode", "str")
}


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            import builtins

            return getattr(builtins, "str" if name == "unicode" else name)
        raise InputError(
            f"refusing to load {module}.{name} from a pickle: a pathway-set pickle holds only dicts, lists, "
            "tuples, sets and strings",
            "this file is not a published set pickle (or has been tampered with); do not load it",
        )

    def persistent_load(self, pid):
        raise InputError("refusing a pickle with persistent references", "not a published set pickle")


def read_set_pickle(path: str | Path) -> dict[str, list[str]]:
    """A ``{set name: [genes]}`` pickle, read with the restricted unpickler.

    Raises
    ------
    InputError
        When the file is missing, needs anything but plain containers and strings, or does not hold
        a dict of string lists.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"pickle not found: {path}")
    try:
        obj = _Restricted(io.BytesIO(path.read_bytes())).load()
    except InputError:
        raise
    except Exception as err:  # a truncated or non-pickle file
        raise InputError(f"{path} is not a readable pickle: {err}") from None
    if not isinstance(obj, dict) or not all(
        isinstance(k, str)
        and isinstance(v, list | tuple | set | frozenset)
        and all(isinstance(g, str) for g in v)
        for k, v in obj.items()
    ):
        raise InputError(f"{path} does not hold a dict of set name -> list of gene names")
    return {k: list(v) for k, v in obj.items()}


def _collection(path: Path) -> str:
    stem = path.name.lower()
    if "hallmark" in stem:
        return "hallmark"
    if "go" in stem.replace("_genes", "").split("_") or "final_go" in stem:
        return "go"
    return path.stem


def import_histoprism(files: Sequence[str | Path], out: str | Path, overwrite: bool = False) -> dict:
    """Write the published sets as a collection folder (``hallmark.gmt``, ``go.gmt``, ``manifest.json``).

    Ensembl IDs (the ``*_mapped.pkl`` files) are mapped to symbols with the shipped table, since
    pathways are matched to panels by symbol; genes without a symbol are dropped and counted.

    Returns
    -------
    dict
        The manifest (sources with sha256, set counts, the collection id).
    """
    from ..genes import detect_id_style, to_symbols
    from ..io.checksum import sha256_file
    from ..io.gmt import GeneSet, collection_id, write_gmt
    from ..io.runfolder import atomic_dir, dumps_json

    files = [Path(f) for f in files]
    if not files:
        raise InputError("no pickle given", "pass final_hallmark_genes.pkl and/or final_GO_genes.pkl")
    by_coll: dict[str, list[GeneSet]] = {}
    sources = []
    for f in files:
        sets = read_set_pickle(f)
        coll = _collection(f)
        if coll in by_coll:
            raise InputError(f"two files for collection {coll!r}", "give one Hallmark and one GO file")
        genes_all = [g for v in sets.values() for g in v]
        style = detect_id_style(genes_all) if genes_all else "symbol"
        dropped = 0
        out_sets = []
        for name, genes in sorted(sets.items()):
            if style == "ensembl":
                sym = [s for s in to_symbols(genes, "ensembl").tolist()]
                dropped += sum(1 for s in sym if not s)
                genes = [s for s in sym if s]
            out_sets.append(GeneSet(coll, name, tuple(dict.fromkeys(genes)), "HistoPrism published set"))
        by_coll[coll] = out_sets
        sizes = [len(s.genes) for s in out_sets]
        sources.append(
            {
                "file": f.name,
                "sha256": sha256_file(f),
                "collection": coll,
                "gene_id_style": style,
                "n_sets": len(out_sets),
                "set_sizes": [min(sizes, default=0), max(sizes, default=0)],
                "genes_without_symbol_dropped": dropped,
            }
        )
    all_sets = [s for v in by_coll.values() for s in v]
    manifest = {
        "name": "histoprism-published",
        "collection_id": collection_id(all_sets),
        "source": "pathway sets released with HistoPrism (ICLR 2026), github.com/susuhu/HistoPrism "
        "(data/Gene_Ontology; licence CC BY-NC 4.0); imported with gpc-bench " + __version__,
        "note": "the released Hallmark sets are cut to an undocumented gene universe (8-83 genes each), "
        "not the whole MSigDB sets",
        "sources": sources,
        "collections": {c: len(v) for c, v in by_coll.items()},
    }
    with atomic_dir(out, overwrite=overwrite, kind="collection", inputs=files) as tmp:
        for coll, sets in by_coll.items():
            write_gmt(tmp / f"{coll}.gmt", sets)
        (tmp / "manifest.json").write_text(dumps_json(manifest))
    return manifest
