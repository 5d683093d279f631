"""Pathway scores: a sparse gene x pathway membership matrix times the r matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Membership:
    """Which scored genes belong to which pathway.

    Attributes
    ----------
    matrix
        ``scipy.sparse.csr_matrix`` of shape (n_genes, n_pathways), 0/1.
    set_size
        Unique genes in each set.
    n_in_panel
        Set genes matched to a panel gene.
    n_ambiguous
        Set genes matched to more than one panel gene (the first is used).
    """

    matrix: object
    set_size: np.ndarray
    n_in_panel: np.ndarray
    n_ambiguous: int


def membership(panel_symbols, gene_sets) -> Membership:
    """Build the gene x pathway matrix.

    Parameters
    ----------
    panel_symbols
        Symbol of each scored gene (``""`` when unknown).
    gene_sets
        Sequence of gene lists (symbols).

    Notes
    -----
    A symbol that several panel genes carry (Ensembl IDs mapping to one
    symbol) is matched to the first of them in panel order.
    """
    from scipy import sparse

    index: dict[str, int] = {}
    n_amb_symbols = set()
    for j, s in enumerate(panel_symbols):
        if not s:
            continue
        if s in index:
            n_amb_symbols.add(s)
        else:
            index[s] = j
    rows, cols = [], []
    set_size = np.zeros(len(gene_sets), dtype=np.int64)
    n_in = np.zeros(len(gene_sets), dtype=np.int64)
    ambiguous = 0
    for k, genes in enumerate(gene_sets):
        uniq = list(dict.fromkeys(g for g in genes if g))
        set_size[k] = len(uniq)
        hits = [index[g] for g in uniq if g in index]
        ambiguous += sum(1 for g in uniq if g in n_amb_symbols)
        n_in[k] = len(hits)
        rows.extend(hits)
        cols.extend([k] * len(hits))
    mat = sparse.csr_matrix(
        (np.ones(len(rows)), (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
        shape=(len(panel_symbols), len(gene_sets)),
    )
    return Membership(mat, set_size, n_in, ambiguous)


def pathway_wsi_scores(r: np.ndarray, matrix) -> tuple[np.ndarray, np.ndarray]:
    """Mean r over each pathway's defined genes, for every WSI.

    Parameters
    ----------
    r
        ``(n_wsi, n_genes)`` correlations, NaN where undefined.
    matrix
        Sparse ``(n_genes, n_pathways)`` membership.

    Returns
    -------
    scores
        ``(n_wsi, n_pathways)``, NaN where no gene is defined.
    n_scored
        ``(n_wsi, n_pathways)`` number of defined genes.
    """
    valid = np.isfinite(r)
    sums = np.asarray((matrix.T @ np.where(valid, r, 0.0).T).T)
    counts = np.asarray((matrix.T @ valid.T.astype(np.float64)).T)
    scores = np.full(sums.shape, np.nan)
    np.divide(sums, counts, out=scores, where=counts > 0)
    return scores, counts.round().astype(np.int64)
