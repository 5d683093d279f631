"""Gene-ID style detection and symbol <-> Ensembl mapping.

The mapping table ships with the package (``gpc_bench/data``); it is built by
``scripts/build_gene_table.py`` from Debian's ``r-bioc-org.hs.eg.db``.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from .metrics.pathway import Membership

IdStyle = Literal["ensembl", "symbol"]

_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{11}(\.\d+)?$")
_ENSEMBL_LINE = re.compile(r"^ENS[A-Z]*G\d{11}(?:\.\d+)?$", re.MULTILINE)


def strip_version(ids: Iterable[str]) -> np.ndarray:
    """Drop the ``.N`` version suffix of Ensembl IDs (other IDs are returned unchanged)."""
    out = [
        g.split(".", 1)[0] if "." in g and _ENSEMBL.match(g) else g
        for g in np.asarray(ids, dtype=object).tolist()
    ]
    return np.array(out, dtype=object)


def detect_id_style(ids: Iterable[str]) -> IdStyle:
    """Return ``"ensembl"`` when most IDs look like Ensembl gene IDs, else ``"symbol"``."""
    ids = [str(g) for g in ids]
    if not ids:
        return "symbol"
    joined = "\n".join(ids)
    if joined.count("\n") == len(ids) - 1:  # one ID per line: count the matching lines in one scan
        n_ens = len(_ENSEMBL_LINE.findall(joined))
    else:
        n_ens = sum(1 for g in ids if g.startswith("ENS") and _ENSEMBL.match(g))
    return "ensembl" if n_ens * 2 > len(ids) else "symbol"


def _read_pairs(name: str) -> list[tuple[str, str]]:
    raw = resources.files("gpc_bench.data").joinpath(name).read_bytes()
    lines = gzip.decompress(raw).decode().splitlines()[1:]
    return [tuple(line.split("\t")) for line in lines]


@cache
def ensembl_to_symbol() -> dict[str, str]:
    """Ensembl gene ID -> HGNC symbol, from the shipped table.

    An Ensembl ID that NCBI maps to several genes gets the first of its rows, which the build
    script orders by a documented rule (the protein-coding gene, then a named gene before a ``LOC``
    placeholder: MCL1, not ADAMTSL4-AS1); :func:`ambiguous_ensembl` lists those IDs.
    """
    table: dict[str, str] = {}
    for ens, sym in _read_pairs("ensembl_symbol.tsv.gz"):
        table.setdefault(ens, sym)
    return table


@cache
def ambiguous_ensembl() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Ensembl IDs with several candidate symbols: ID -> (the symbol used, the others)."""
    raw = resources.files("gpc_bench.data").joinpath("ensembl_ambiguous.tsv.gz").read_bytes()
    rows = [line.split("\t") for line in gzip.decompress(raw).decode().splitlines()[1:]]
    return {ens: (sym, tuple(others.split("|"))) for ens, sym, others in rows}


@cache
def symbol_to_ensembl() -> dict[str, tuple[str, ...]]:
    """HGNC symbol -> all its Ensembl gene IDs, from the shipped table."""
    table: dict[str, list[str]] = {}
    for ens, sym in _read_pairs("ensembl_symbol.tsv.gz"):
        table.setdefault(sym, []).append(ens)
    return {k: tuple(v) for k, v in table.items()}


@cache
def alias_to_symbol() -> dict[str, tuple[str, ...]]:
    """Alias (previous or alternative symbol) -> current HGNC symbols."""
    table: dict[str, list[str]] = {}
    for alias, sym in _read_pairs("alias_symbol.tsv.gz"):
        table.setdefault(alias, []).append(sym)
    return {k: tuple(v) for k, v in table.items()}


def table_info() -> dict:
    """Provenance of the shipped gene table (source package and dates)."""
    return json.loads(resources.files("gpc_bench.data").joinpath("gene_ids.json").read_text())


def to_symbols(
    ids: Iterable[str], style: IdStyle | None = None, var_symbols: Sequence | None = None
) -> np.ndarray:
    """Map gene IDs to symbols for matching against pathway gene sets.

    Parameters
    ----------
    ids
        Gene IDs (symbols or Ensembl IDs, with or without version).
    style
        ID style; detected when ``None``.
    var_symbols
        Optional per-ID symbols (``var["gene_symbol"]``); used first for Ensembl IDs.

    Returns
    -------
    Array of symbols, ``""`` where an Ensembl ID has no known symbol.

    Each ID is mapped by what it is, so that a mixed panel (mostly Ensembl IDs with some symbols,
    as published panels are) keeps its symbols: an ID that is not an Ensembl ID is its own symbol,
    and an Ensembl ID in a mostly-symbol panel is mapped too.
    """
    ids = strip_version(ids)
    style = style or detect_id_style(ids)
    is_ens = ensembl_mask(ids)
    if style == "symbol" and not is_ens.any():
        return ids.astype(object)
    given = [""] * len(ids) if var_symbols is None else [_usable(v) for v in list(var_symbols)]
    if all(given):
        return np.array(given, dtype=object)
    table = ensembl_to_symbol()
    return np.array(
        [
            v or (table.get(g, "") if e else g)
            for g, v, e in zip(ids.tolist(), given, is_ens.tolist(), strict=True)
        ],
        dtype=object,
    )


def ensembl_mask(ids: Iterable[str]) -> np.ndarray:
    """Which IDs are Ensembl gene IDs (with or without version)."""
    return np.fromiter(
        (str(g).startswith("ENS") and bool(_ENSEMBL.match(str(g))) for g in ids), bool, len(ids)
    )


def missing_pathway_genes(
    sets: Sequence, memb: Membership, panel_ids: Sequence[str], panel_symbols: Sequence[str]
) -> list[tuple[int, str, str, str]]:
    """The genes of each pathway that no scored panel gene carries, and why.

    Returns ``(set index, symbol, reason, panel gene)`` rows, by set then symbol. ``reason`` is
    ``"not in panel"``, or, where the shipped table gives the symbol an Ensembl ID that *is* in the
    panel, ``"panel ID maps to another symbol"`` / ``"panel ID has no symbol"`` (the gene was lost to
    ID mapping, not absent).
    """
    ids = strip_version(np.asarray(panel_ids, dtype=object)).tolist()
    sym_of = dict(zip(ids, np.asarray(panel_symbols, dtype=object).tolist(), strict=True))
    to_ens = symbol_to_ensembl() if ensembl_mask(ids).any() else {}
    matched: dict[int, set] = {}
    for p, g in zip(memb.pathway.tolist(), memb.gene.tolist(), strict=True):
        matched.setdefault(p, set()).add(panel_symbols[g])
    rows = []
    for k, s in enumerate(sets):
        for sym in sorted(set(s.genes) - matched.get(k, set())):
            hit = next((e for e in to_ens.get(sym, ()) if e in sym_of), "")
            if not hit:
                rows.append((k, sym, "not in panel", ""))
            else:
                why = "panel ID maps to another symbol" if sym_of[hit] else "panel ID has no symbol"
                rows.append((k, sym, why, hit))
    return rows


def _usable(v) -> str:
    return v if isinstance(v, str) and v and v.lower() != "nan" else ""
