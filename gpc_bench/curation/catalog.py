"""Inspect a pathway collection: its sets, their sizes, and where they come from."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import InputError, suggest
from ..io.gmt import PathwayCollection, default_collection_path, load_pathways

if TYPE_CHECKING:
    import pandas as pd


def _folder(spec) -> Path | None:
    if spec is None:
        return default_collection_path()
    specs = [spec] if isinstance(spec, str | Path) else list(spec)
    dirs = [Path(s) for s in specs if Path(s).is_dir()]
    return dirs[0] if len(dirs) == 1 else None


def list_pathways(spec: str | Path | Sequence[str | Path] | None = None) -> pd.DataFrame:
    """One row per set: collection, pathway, size, description (the GO id for GO sets).

    Parameters
    ----------
    spec
        As for :func:`gpc_bench.load_pathways` (default: the shipped collection).
    """
    import pandas as pd

    coll = load_pathways(spec)
    rows = [(s.collection, s.name, len(s.genes), s.description) for s in coll.sets]
    return pd.DataFrame(rows, columns=["collection", "pathway", "size", "description"])


def provenance(coll: PathwayCollection) -> list[str]:
    """Human-readable provenance lines of a collection (from its manifest when it has one)."""
    lines = [f"collection_id  {coll.collection_id}"]
    m = coll.manifest
    if m is None:
        lines += [f"source         {s['file']}  sha256:{s['sha256'][:16]}" for s in coll.sources]
        return lines
    if m.get("collection_id") and m["collection_id"] != coll.collection_id:
        lines.append(f"WARNING        manifest says {m['collection_id']}: the GMT files were edited")
    if "name" in m:
        lines.insert(0, f"name           {m['name']}")
    for src in m.get("sources", []):
        lines.append(f"source         {src['file']} ({src['kind']}, release {src.get('release')})")
    for up in m.get("upstream", []):
        lines.append(f"built from     {up['package']}  sha256:{up['sha256'][:16]}")
    p = m.get("parameters", {})
    if p:
        lines.append("parameters     " + ", ".join(f"{k}={v}" for k, v in sorted(p.items())))
    if m.get("universe"):
        lines.append(f"universe       {m['universe']}")
    if m.get("license"):
        lines.append(f"license        {m['license']}")
    return lines


def show_pathway(name: str, spec: str | Path | Sequence[str | Path] | None = None) -> dict:
    """One set with its genes and, when the folder has ``pruned.csv``, its curation record."""
    coll = load_pathways(spec)
    hits = [s for s in coll.sets if s.name == name]
    if not hits:
        hint = suggest(name, [s.name for s in coll.sets])
        raise InputError(
            f"no pathway named {name!r} in the collection",
            hint or "list the names with `gpc-bench pathways list`",
        )
    s = hits[0]
    out = {
        "collection": s.collection,
        "pathway": s.name,
        "description": s.description,
        "size": len(s.genes),
        "genes": list(s.genes),
        "curation": None,
    }
    folder = _folder(spec)
    if folder is not None and (folder / "pruned.csv").is_file():
        import pandas as pd

        pruned = pd.read_csv(folder / "pruned.csv")
        rec = pruned[pruned["name"] == name]
        if len(rec):
            out["curation"] = {k: (None if v != v else v) for k, v in rec.iloc[0].to_dict().items()}
    return out
