"""GMT gene-set files and pathway collections.

A *collection folder* holds one GMT file per collection (``hallmark.gmt``,
``go.gmt``) and a ``manifest.json`` written by ``gpc-bench curate``.

GMT parsing is strict here on purpose: gseapy's ``read_gmt`` silently skips
malformed lines, while a benchmark must refuse them (docs/architecture.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .._errors import InputError
from .checksum import sha256_file

DEFAULT_COLLECTION = "gpc-default"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GeneSet:
    """One pathway: its collection, name, description and member genes."""

    collection: str
    name: str
    genes: tuple[str, ...]
    description: str = ""


@dataclass
class PathwayCollection:
    """Gene sets from one or more GMT files, with provenance."""

    sets: list[GeneSet]
    sources: list[dict] = field(default_factory=list)
    manifest: dict | None = None

    @property
    def collection_id(self) -> str:
        return collection_id(self.sets)

    @property
    def collections(self) -> list[str]:
        return list(dict.fromkeys(s.collection for s in self.sets))


def collection_id(sets: Iterable[GeneSet]) -> str:
    """Content hash of the sorted sets: equal ids mean identical pathway definitions."""
    h = hashlib.sha256()
    for s in sorted(sets, key=lambda s: (s.collection, s.name)):
        h.update(f"{s.collection}\t{s.name}\t{','.join(sorted(set(s.genes)))}\n".encode())
    return "sha256:" + h.hexdigest()[:16]


def read_gmt(path: str | Path) -> list[tuple[str, str, tuple[str, ...]]]:
    """Read a GMT file strictly: ``(name, description, genes)`` per line.

    Raises
    ------
    InputError
        For a missing file, a line without genes, an empty name or a name
        that appears twice.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"gene set file not found: {path}", "give a .gmt file or a collection folder")
    out: list[tuple[str, str, tuple[str, ...]]] = []
    seen: set[str] = set()
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is not part of the first name
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a UTF-8 text file", "GMT files are tab-separated text") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.rstrip("\r\n").split("\t")
        name = fields[0].strip()
        genes = tuple(g.strip() for g in fields[2:] if g.strip())
        if len(fields) < 3 or not name or not genes:
            raise InputError(
                f"{path}, line {lineno}: malformed GMT line {line[:60]!r}",
                "each line must be: name<TAB>description<TAB>gene1<TAB>gene2...",
            )
        if name in seen:
            raise InputError(f"{path}, line {lineno}: gene set {name!r} appears twice")
        seen.add(name)
        out.append((name, fields[1].strip(), genes))
    return out


def write_gmt(path: str | Path, sets: Iterable[GeneSet]) -> None:
    """Write gene sets as GMT (name, description, genes), one set per line, in the given order."""
    lines = [f"{s.name}\t{s.description}\t" + "\t".join(s.genes) + "\n" for s in sets]
    Path(path).write_text("".join(lines), encoding="utf-8")


_MSIGDB_NAMES = [
    (re.compile(r"^(h\.all|hallmark)", re.I), "hallmark"),
    (re.compile(r"^(c5\.(go|bp|cc|mf)|go)([._-]|$)", re.I), "go"),
]


def collection_name(path: Path) -> str:
    """Collection name of a GMT file: ``hallmark`` / ``go`` for MSigDB-style names, else the stem."""
    stem = path.name[: -len(".gmt")] if path.name.endswith(".gmt") else path.stem
    for pattern, name in _MSIGDB_NAMES:
        if pattern.match(stem):
            return name
    return stem


def default_collection_path() -> Path | None:
    """The shipped ``gpc-default`` collection, from the installed package or a source checkout."""
    try:
        p = Path(str(resources.files("gpc_bench.pathways").joinpath(DEFAULT_COLLECTION)))
        if (p / "manifest.json").is_file():
            return p
    except ModuleNotFoundError:
        pass
    p = Path(__file__).resolve().parents[2] / "pathways" / DEFAULT_COLLECTION
    return p if (p / "manifest.json").is_file() else None


def check_pathway_paths(spec: str | Path | Sequence[str | Path] | None) -> None:
    """Refuse a pathway path that does not exist, before any scoring work.

    Raises
    ------
    InputError
        Naming the path, and whether it looked like a folder or a GMT file.
    """
    if spec is None:
        return
    for item in [spec] if isinstance(spec, str | Path) else spec:
        if isinstance(item, str) and "=" in item and not Path(item).exists():
            item = item.split("=", 1)[1]
        path = Path(item)
        if not path.exists():
            kind = "GMT file" if path.suffix.lower() == ".gmt" else "collection folder or GMT file"
            raise InputError(
                f"--pathways {kind} not found: {path}",
                "give GMT files or a collection folder (gpc-bench curate writes one); "
                "leave --pathways out for the shipped collection",
            )
        if path.suffix.lower() in (".pkl", ".pickle"):
            raise InputError(
                f"--pathways {path} is a pickle, not a GMT file or collection folder",
                f"import it first: gpc-bench pathways import histoprism {path} --out SETS; "
                "then pass --pathways SETS",
            )


def _ensembl_to_symbols(file_sets: list) -> tuple[list, dict | None]:
    """A GMT of Ensembl gene IDs, mapped to symbols with the shipped table (pathways are matched by
    symbol); IDs without a symbol are dropped and counted. Symbol GMTs pass unchanged (``None``)."""
    from ..genes import detect_id_style, to_symbols

    all_ids = [g for _, _, genes in file_sets for g in genes]
    if detect_id_style(all_ids) != "ensembl":
        return file_sets, None
    out, unmapped = [], set()
    for name, desc, genes in file_sets:
        sym = to_symbols(list(genes), "ensembl").tolist()
        unmapped |= {g for g, s in zip(genes, sym, strict=True) if not s}
        out.append((name, desc, tuple(dict.fromkeys(s for s in sym if s))))
    info = {
        "style": "ensembl",
        "mapped_to_symbols": len(set(all_ids)) - len(unmapped),
        "without_symbol": len(unmapped),
    }
    logger.info(
        "pathway genes are Ensembl IDs: mapped to symbols (%d without a symbol dropped)", len(unmapped)
    )
    return out, info


def load_pathways(spec: str | Path | Sequence[str | Path] | None = None) -> PathwayCollection:
    """Load pathways from GMT files and/or collection folders.

    Parameters
    ----------
    spec
        ``None`` (the shipped default collection), a path, ``"NAME=path.gmt"``
        to name a file's collection, or a list of these.
    """
    if spec is None:
        default = default_collection_path()
        if default is None:
            raise InputError(
                "no pathways given and the default collection is not installed",
                "pass --pathways with GMT files or a collection folder (gpc-bench curate builds one)",
            )
        spec = [default]
    elif isinstance(spec, str | Path):
        spec = [spec]
    sets: list[GeneSet] = []
    sources: list[dict] = []
    manifest = None
    for item in spec:
        name = None
        if isinstance(item, str) and "=" in item and not Path(item).exists():
            name, item = item.split("=", 1)
        path = Path(item)
        if path.is_dir():
            gmts = sorted(path.glob("*.gmt"))
            if not gmts:
                raise InputError(f"collection folder {path} holds no .gmt files")
            mpath = path / "manifest.json"
            if mpath.is_file():
                manifest = json.loads(mpath.read_text())
            files = [(collection_name(g), g) for g in gmts]
        else:
            files = [(name or collection_name(path), path)]
        for coll, gmt in files:
            file_sets = read_gmt(gmt)
            source = {"collection": coll, "file": gmt.name, "sha256": sha256_file(gmt)}  # small
            file_sets, mapped = _ensembl_to_symbols(file_sets)
            if mapped is not None:
                source["gene_ids"] = mapped
            sets.extend(GeneSet(coll, set_name, genes, desc) for set_name, desc, genes in file_sets)
            sources.append(source)
    keys = [(s.collection, s.name) for s in sets]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise InputError(f"pathway {dup[1]!r} appears twice in collection {dup[0]!r}")
    if not sets:
        raise InputError("the pathway files hold no gene sets", "check the GMT files")
    return PathwayCollection(sets, sources, manifest)
