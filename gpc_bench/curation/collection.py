"""``curate``: sources -> universe -> size filter -> Jaccard pruning -> collection folder."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._errors import InputError, examples
from .._version import __version__
from ..io.gmt import GeneSet, collection_id, write_gmt
from ..io.runfolder import atomic_dir, dumps_json
from .prune import jaccard_prune
from .sources import go_from_consortium, read_go_gmt, read_hallmark

if TYPE_CHECKING:
    import pandas as pd

    from ..settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class CurationResult:
    """Curated sets and the record of every decision."""

    hallmark: list[GeneSet]
    go: list[GeneSet]
    pruned: pd.DataFrame
    manifest: dict
    #: further collections (``--collection NAME=FILE.gmt``): name -> kept sets
    extra: dict = None

    @property
    def sets(self) -> list[GeneSet]:
        return self.hallmark + self.go + [s for v in (self.extra or {}).values() for s in v]

    def write(self, out: str | Path, overwrite: bool = False) -> Path:
        with atomic_dir(out, overwrite=overwrite, kind="collection") as tmp:
            if self.hallmark:
                write_gmt(tmp / "hallmark.gmt", self.hallmark)
            if self.go:
                write_gmt(tmp / "go.gmt", self.go)
            for name, sets in (self.extra or {}).items():
                write_gmt(tmp / f"{name}.gmt", sets)
            self.pruned.to_csv(tmp / "pruned.csv", index=False, lineterminator="\n")
            (tmp / "manifest.json").write_text(dumps_json(self.manifest))
        return Path(out)


def read_universe(path: str | Path) -> tuple[set[str], str]:
    """Gene symbols of a universe: an ``.h5ad`` (var_names), a text file or JSON ``{"genes": [...]}``.

    Ensembl IDs are mapped to symbols through the shipped table.
    """
    from ..genes import detect_id_style, to_symbols

    path = Path(path)
    if not path.is_file():
        raise InputError(f"universe file not found: {path}")
    if path.suffix == ".h5ad":
        from ..io.h5ad import H5adSource

        src = H5adSource(path, "universe")
        ids, sym = src.var_names(), src.var_column("gene_symbol")
        src.close()
    elif path.suffix == ".json":
        ids, sym = np.asarray(json.loads(path.read_text())["genes"], dtype=object), None
    else:
        ids = np.asarray([ln.strip() for ln in path.read_text().splitlines() if ln.strip()], dtype=object)
        sym = None
    style = detect_id_style(ids)
    symbols = set(to_symbols(ids, style, sym).tolist()) - {""}
    return symbols, f"{path.name}: {len(ids)} {style} IDs -> {len(symbols)} symbols"


def _downloads(hallmark, go, go_obo, go_annotations, msigdb_release, go_release, settings):
    """Fetch the ``--msigdb-release`` / ``--go-release`` files (cached) in place of given ones;
    their URLs by file name."""
    urls: dict[str, str] = {}
    if go_release is not None:
        if go_obo is not None or go:
            raise InputError("--go-release replaces --go/--go-obo; give only one GO source")
        from .downloads import fetch_go

        got = fetch_go(go_release, settings=_settings(settings))
        go_obo, go_annotations = got["obo"], got["annotations"]
        urls.update({got["obo"].name: got["urls"]["obo"], got["annotations"].name: got["urls"]["gaf"]})
    if msigdb_release is not None:
        from .downloads import fetch_msigdb

        want_go = not go and go_obo is None
        cats = ("h.all", "c5.go") if want_go else ("h.all",)
        if hallmark is not None:
            raise InputError("--msigdb-release replaces --hallmark; give only one Hallmark source")
        got = {r["category"]: r for r in fetch_msigdb(msigdb_release, cats, settings=_settings(settings))}
        hallmark = got["h.all"]["path"]
        if want_go:
            go = [got["c5.go"]["path"]]
        urls.update({r["path"].name: r["url"] for r in got.values()})
    return hallmark, go, go_obo, go_annotations, urls


def _curate_go(go_sets, uni, min_size: int, max_size: int, jaccard: float, prune_order: str, collection="go"):
    """Universe, size filter and Jaccard pruning of the GO sets (or of a further ``collection``):
    the kept sets (by name), the pruning records and the counts per namespace."""
    records: list[dict] = []
    kept_go: list[GeneSet] = []
    stage = {}
    for ns, _s in go_sets:
        stage.setdefault(ns or "GO", {"read": 0})["read"] += 1
    restricted = []
    for ns, s in go_sets:
        genes = tuple(dict.fromkeys(g for g in s.genes if uni is None or g in uni))
        restricted.append((ns or "GO", GeneSet(collection, s.name, genes, s.description)))
    for ns, s in restricted:
        if s.genes:
            stage[ns]["in_universe"] = stage[ns].get("in_universe", 0) + 1
    sized = [(ns, s) for ns, s in restricted if min_size <= len(s.genes) <= max_size]
    for ns, _ in sized:
        stage[ns]["size_filtered"] = stage[ns].get("size_filtered", 0) + 1
    if not sized:
        hint = "check --min-size/--max-size"
        if uni is not None:
            some = [g for _, s in go_sets[:3] for g in s.genes[:3]]
            hint = f"set genes look like {examples(some)}; universe like {examples(sorted(uni))}"
        raise InputError(
            f"no {'GO' if collection == 'go' else collection} set has {min_size}-{max_size} genes after "
            "the universe step "
            f"({len(go_sets)} read, {sum(1 for _, s in restricted if s.genes)} overlap the universe)",
            hint,
        )
    ns_of = {s.name: ns for ns, s in sized}
    recs = jaccard_prune([s.name for _, s in sized], [s.genes for _, s in sized], jaccard, prune_order)
    by_name = {s.name: s for _, s in sized}
    for r in recs:
        r["namespace"] = ns_of[r["name"]]
        if r["kept"]:
            kept_go.append(by_name[r["name"]])
            stage[r["namespace"]]["kept"] = stage[r["namespace"]].get("kept", 0) + 1
        records.append(r)
    kept_go.sort(key=lambda s: s.name)
    return kept_go, records, stage


def _extra_collections(collections) -> dict[str, Path]:
    """``{name: gmt}`` from a dict or ``NAME=FILE.gmt`` strings, checked."""
    import re

    out: dict[str, Path] = {}
    items = (
        collections.items()
        if isinstance(collections, dict)
        else [str(c).split("=", 1) for c in collections or ()]
    )
    for item in items:
        if len(item) != 2:
            raise InputError(
                f"--collection {'='.join(item)!r} is not NAME=FILE.gmt",
                "e.g. --collection reactome=c2.cp.reactome.gmt",
            )
        name, path = item[0].strip(), Path(item[1])
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", name) or name in ("hallmark", "go"):
            raise InputError(
                f"--collection name {name!r}: use a lower-case name other than hallmark and go",
                "e.g. --collection reactome=c2.cp.reactome.gmt",
            )
        if name in out:
            raise InputError(f"--collection {name!r} given twice")
        if not path.is_file():
            raise InputError(f"--collection {name}: {path} not found")
        out[name] = path
    return out


def _settings(settings):
    from ..settings import Settings

    return settings or Settings.from_env()


def _hallmark(path, uni, sources: list, counts: dict) -> list[GeneSet]:
    """The Hallmark sets of ``path`` (none for ``None``), cut to the universe ``uni``."""
    if path is None:
        return []
    hall, rec = read_hallmark(path)
    sources.append(rec)
    n_read = len(hall)
    if uni is not None:
        hall = [
            GeneSet(s.collection, s.name, tuple(g for g in s.genes if g in uni), s.description) for s in hall
        ]
        hall = [s for s in hall if s.genes]
    counts["hallmark"] = {"read": n_read, "kept": len(hall)}
    return hall


def _extras(extra_in: dict, uni, params: tuple, sources: list, counts: dict, records: list) -> dict:
    """Each further collection (``{name: gmt}``) filtered and pruned like GO, within itself."""
    from ..io.gmt import read_gmt, sha256_file

    extra: dict[str, list[GeneSet]] = {}
    for name, path in extra_in.items():
        triples = read_gmt(path)
        sources.append(
            {"collection": name, "file": Path(path).name, "sha256": sha256_file(path), "n_sets": len(triples)}
        )
        named = [(name, GeneSet(name, n, tuple(g), d)) for n, d, g in triples]
        extra[name], recs, counts[name] = _curate_go(named, uni, *params, name)
        records += recs
    return extra


def curate(
    hallmark: str | Path | None = None,
    go: str | Path | Sequence[str | Path] = (),
    *,
    go_obo: str | Path | None = None,
    go_annotations: str | Path | None = None,
    universe: str | Path | None = None,
    min_size: int = 50,
    max_size: int = 100,
    jaccard: float = 0.1,
    prune_order: str = "largest-first",
    go_namespaces: Sequence[str] = ("BP", "CC", "MF"),
    go_evidence_exclude: Sequence[str] | None = ("ND",),
    msigdb_release: str | None = None,
    go_release: str | None = None,
    collections: dict | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    settings: Settings | None = None,
) -> CurationResult:
    """Curate Hallmark + GO pathways as the GPC benchmark does (docs/curation.md).

    Hallmark sets get no size filter and no pruning, but like GO sets they are cut to the universe
    when one is given; GO sets are then size-filtered (``min_size <= size <= max_size``) and pruned
    at Jaccard ``jaccard``. (The Hallmark sets the paper released are cut to an undocumented
    universe, 8-83 genes each: ``gpc-bench pathways import histoprism`` reads them as they are.)

    ``msigdb_release`` (e.g. ``"2025.1"``) downloads the Hallmark GMT and, unless GO comes from
    elsewhere, the MSigDB GO GMT; ``go_release`` (``"current"`` or a date) downloads go-basic.obo
    and the human GAF, cached in the folder and from the mirrors of ``settings``
    (:class:`~gpc_bench.settings.Settings`, default: from the environment), URLs in the manifest.

    ``collections`` (``{name: gmt}``, e.g. Reactome or KEGG from MSigDB) adds further collections,
    each cut to the universe, size-filtered and pruned like GO, within itself, written as
    ``<name>.gmt`` and scored and reported as a collection of its own.
    """
    import pandas as pd

    hallmark, go, go_obo, go_annotations, urls = _downloads(
        hallmark, go, go_obo, go_annotations, msigdb_release, go_release, settings
    )
    extra_in = _extra_collections(collections)
    if hallmark is None and not go and go_obo is None and not extra_in:
        raise InputError(
            "nothing to curate", "give --hallmark and/or --go (or --go-obo with --go-annotations)"
        )
    if (go_obo is None) != (go_annotations is None):
        raise InputError("--go-obo and --go-annotations go together")
    uni, uni_desc = (None, None) if universe is None else read_universe(universe)
    sources: list[dict] = []
    counts: dict = {}
    hall = _hallmark(hallmark, uni, sources, counts)
    go_sets: list[tuple[str, GeneSet]] = []
    if go:
        sets, recs = read_go_gmt([go] if isinstance(go, str | Path) else go)
        go_sets += sets
        sources += recs
    if go_obo is not None:
        sets, recs = go_from_consortium(go_obo, go_annotations, go_namespaces, go_evidence_exclude)
        go_sets += sets
        sources += recs
    wanted = {ns.upper() for ns in go_namespaces}
    go_sets = [(ns, s) for ns, s in go_sets if ns is None or ns in wanted]
    records, kept_go = [], []
    if go_sets:
        kept_go, records, counts["go"] = _curate_go(go_sets, uni, min_size, max_size, jaccard, prune_order)
    extra = _extras(extra_in, uni, (min_size, max_size, jaccard, prune_order), sources, counts, records)
    if uni is not None and not hall and not kept_go:
        raise InputError("no gene set overlaps the universe", f"universe: {uni_desc}")
    for src in sources:
        if src["file"] in urls:
            src["url"] = urls[src["file"]]
    pruned = pd.DataFrame(records, columns=["namespace", "name", "size", "kept", "conflict", "jaccard"])
    manifest = {
        "collection_id": collection_id(hall + kept_go + [s for v in extra.values() for s in v]),
        "gpc_bench_version": __version__,
        "sources": sources,
        "universe": uni_desc,
        "universe_size": None if uni is None else len(uni),
        "parameters": {
            "min_size": min_size,
            "max_size": max_size,
            "jaccard": jaccard,
            "prune_order": prune_order,
            "go_namespaces": list(go_namespaces),
            "go_evidence_exclude": list(go_evidence_exclude or ()),
            "hallmark_filtered": False,
        },
        "counts": counts,
        "n_sets": {"hallmark": len(hall), "go": len(kept_go), **{k: len(v) for k, v in extra.items()}},
    }
    res = CurationResult(hall, kept_go, pruned, manifest, extra)
    logger.info("curated %d Hallmark and %d GO sets (%s)", len(hall), len(kept_go), manifest["collection_id"])
    if out is not None:
        res.write(out, overwrite=overwrite)
    return res
