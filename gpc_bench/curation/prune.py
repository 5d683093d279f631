"""Jaccard redundancy pruning with a sparse incidence matrix (no Python pair loops)."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

from .._progress import Progress

logger = logging.getLogger(__name__)

PruneOrder = Literal["largest-first", "smallest-first"]


def prune_order(names: list[str], sizes: np.ndarray, order: PruneOrder) -> np.ndarray:
    """Indices in walking order: by size (descending for ``largest-first``), ties by name."""
    if order not in ("largest-first", "smallest-first"):
        raise ValueError(f"prune order must be 'largest-first' or 'smallest-first', not {order!r}")
    rank_name = np.argsort(np.argsort(np.asarray(names, dtype=object), kind="stable"), kind="stable")
    key = -np.asarray(sizes) if order == "largest-first" else np.asarray(sizes)
    return np.lexsort((rank_name, key))


def jaccard_prune(
    names: list[str], gene_sets: list, tau: float = 0.1, order: PruneOrder = "largest-first"
) -> tuple[list[int], list[tuple]]:
    """Greedy redundancy pruning.

    Walk the sets in ``order`` and keep a set only if its Jaccard index with
    every set already kept is <= ``tau``.  ``largest-first`` matches the
    collection the GPC paper published; ``smallest-first`` matches its text
    ("remove the larger of the two pathways").

    Returns
    -------
    list of dict
        One record per set in walking order: name, size, kept, and jaccard (the highest
        Jaccard with a set kept before it); for a removed set, conflict names that kept set
        (the earliest in the order on ties).
    """
    from scipy import sparse

    n = len(names)
    genes = [list(dict.fromkeys(g)) for g in gene_sets]
    sizes = np.array([len(g) for g in genes], dtype=np.int64)
    index: dict[str, int] = {}
    rows, cols = [], []
    for i, g in enumerate(genes):
        for gene in g:
            cols.append(index.setdefault(gene, len(index)))
            rows.append(i)
    inc = sparse.csr_matrix(
        (
            np.ones(len(rows), dtype=np.int64),
            (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)),
        ),
        shape=(n, max(len(index), 1)),
    )
    inter = (inc @ inc.T).tocsr()
    walk = prune_order(names, sizes, order)
    position = np.empty(n, dtype=np.int64)
    position[walk] = np.arange(n)
    kept = np.zeros(n, dtype=bool)
    records = []
    progress = Progress(n, "sets pruned", logger, every=1000)
    for i in walk.tolist():
        lo, hi = inter.indptr[i], inter.indptr[i + 1]
        other, shared = inter.indices[lo:hi], inter.data[lo:hi]
        sel = kept[other] & (other != i)
        conflict, jmax = None, 0.0
        if sel.any():
            o, s = other[sel], shared[sel].astype(np.float64)
            jac = s / (sizes[i] + sizes[o] - s)
            best = np.lexsort((position[o], -jac))[0]
            conflict, jmax = names[o[best]], float(jac[best])
        keep = jmax <= tau
        kept[i] = keep
        records.append(
            {
                "name": names[i],
                "size": int(sizes[i]),
                "kept": bool(keep),
                "conflict": None if keep else conflict,
                "jaccard": jmax,
            }
        )
        progress.step("pruned %d of %d sets, %d kept", len(records), n, int(kept.sum()))
    progress.close()
    return records
