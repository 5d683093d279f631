"""Pathway scores from a WSI x gene r matrix: membership, per-WSI means, and the GPC reduction.

Pure array functions (no I/O). A membership is kept as two index arrays sorted by pathway, so one
gather and one ``np.add.reduceat`` give every pathway x WSI sum at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Membership:
    """Which panel genes belong to which pathway.

    Attributes
    ----------
    gene
        Panel index of each membership, grouped by pathway (pathway order, then set order).
    pathway
        Pathway index of each membership (non-decreasing).
    n_genes
        Panel size.
    set_size
        Unique genes in each set.
    n_in_panel
        Set genes matched to a panel gene.
    n_ambiguous
        Set genes whose symbol several panel genes carry (the first in panel order is used).
    """

    gene: np.ndarray
    pathway: np.ndarray
    n_genes: int
    set_size: np.ndarray
    n_in_panel: np.ndarray
    n_ambiguous: int

    @property
    def n_pathways(self) -> int:
        return len(self.set_size)

    def sum_over(self, values: np.ndarray) -> np.ndarray:
        """Per-pathway sums of ``values`` (``(..., n_genes)``) over member genes: ``(..., n_pathways)``."""
        values = np.asarray(values, dtype=np.float64)
        out = np.zeros(values.shape[:-1] + (self.n_pathways,))
        if len(self.gene):
            starts = np.searchsorted(self.pathway, np.arange(self.n_pathways))
            has = self.n_in_panel > 0
            sums = np.add.reduceat(values[..., self.gene], starts[has], axis=-1)
            out[..., has] = sums
        return out


def membership(panel_symbols: Sequence[str], gene_sets: Sequence[Sequence[str]]) -> Membership:
    """Match gene sets (symbols) to the panel.

    Parameters
    ----------
    panel_symbols
        Symbol of each panel gene (``""`` when unknown).
    gene_sets
        Sequence of gene lists (symbols); repeated genes count once.

    Notes
    -----
    A symbol that several panel genes carry (Ensembl IDs mapping to one symbol) is matched to the
    first of them in panel order.
    """
    index: dict[str, int] = {}
    repeated = set()
    for j, s in enumerate(panel_symbols):
        if not s:
            continue
        if s in index:
            repeated.add(s)
        else:
            index[s] = j
    genes, paths = [], []
    set_size = np.zeros(len(gene_sets), dtype=np.int64)
    n_in = np.zeros(len(gene_sets), dtype=np.int64)
    ambiguous = 0
    for k, members in enumerate(gene_sets):
        uniq = list(dict.fromkeys(g for g in members if g))
        set_size[k] = len(uniq)
        hits = [index[g] for g in uniq if g in index]
        ambiguous += sum(1 for g in uniq if g in repeated)
        n_in[k] = len(hits)
        genes.extend(hits)
        paths.extend([k] * len(hits))
    return Membership(
        np.asarray(genes, dtype=np.int64),
        np.asarray(paths, dtype=np.int64),
        len(panel_symbols),
        set_size,
        n_in,
        ambiguous,
    )


def pathway_wsi_scores(r: np.ndarray, memb: Membership) -> tuple[np.ndarray, np.ndarray]:
    """Mean r over each pathway's defined genes, for every WSI.

    Parameters
    ----------
    r
        ``(n_wsi, n_genes)`` correlations, NaN where undefined.
    memb
        From :func:`membership`.

    Returns
    -------
    scores
        ``(n_wsi, n_pathways)``, NaN where no gene is defined.
    n_scored
        ``(n_wsi, n_pathways)`` number of defined genes.
    """
    r = np.atleast_2d(np.asarray(r, dtype=np.float64))
    valid = np.isfinite(r)
    sums = memb.sum_over(np.where(valid, r, 0.0))
    counts = memb.sum_over(valid)
    scores = np.full(sums.shape, np.nan)
    np.divide(sums, counts, out=scores, where=counts > 0)
    return scores, counts.round().astype(np.int64)


@dataclass
class PathwayScores:
    """Pathway scores of a cohort (the GPC reduction).

    Attributes
    ----------
    per_wsi
        ``(n_wsi, n_pathways)`` s_im: mean r over the pathway's defined genes in WSI i (NaN for a
        pathway that is not scored).
    n_scored_wsi
        ``(n_wsi, n_pathways)`` defined genes per WSI.
    gpc
        ``(n_pathways,)`` s_m: mean over WSIs of ``per_wsi`` (NaN when not scored).
    gpc_sd
        Standard deviation over WSIs (ddof 1; NaN with fewer than two WSIs).
    n_wsi
        WSIs with a defined score.
    n_scored
        Pathway genes defined in at least one WSI.
    status
        ``ok``, ``too_few_genes`` (fewer than ``min_genes`` scored genes) or ``no_genes_in_panel``.
    """

    per_wsi: np.ndarray
    n_scored_wsi: np.ndarray
    gpc: np.ndarray
    gpc_sd: np.ndarray
    n_wsi: np.ndarray
    n_scored: np.ndarray
    status: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        return self.status == "ok"


def pathway_scores(r: np.ndarray, memb: Membership, min_genes: int = 10) -> PathwayScores:
    """The GPC computation: per-WSI pathway means, then their mean over WSIs.

    Parameters
    ----------
    r
        ``(n_wsi, n_genes)`` gene correlations, NaN where undefined (constant truth, or a constant
        prediction under ``exclude``).
    memb
        From :func:`membership`.
    min_genes
        A pathway needs at least this many genes defined in some WSI to be scored (at least 1).
    """
    r = np.atleast_2d(np.asarray(r, dtype=np.float64))
    per_wsi, counts = pathway_wsi_scores(r, memb)
    scored_gene = np.isfinite(r).any(axis=0)
    n_scored = memb.sum_over(scored_gene).round().astype(np.int64)
    status = np.where(
        memb.n_in_panel == 0,
        "no_genes_in_panel",
        np.where(n_scored < max(min_genes, 1), "too_few_genes", "ok"),
    ).astype(object)
    return over_units(per_wsi, counts, n_scored, status)


def over_units(
    per_wsi: np.ndarray, counts: np.ndarray, n_scored: np.ndarray, status: np.ndarray
) -> PathwayScores:
    """Pathway scores from per-unit values: NaN for pathways that are not ``ok``, then the mean,
    the SD (ddof 1) and the count over the units where a value is defined."""
    per_wsi = np.array(per_wsi, dtype=np.float64)
    per_wsi[:, status != "ok"] = np.nan
    n_def = np.isfinite(per_wsi).sum(axis=0)
    gpc = np.full(per_wsi.shape[1], np.nan)
    np.divide(np.nansum(per_wsi, axis=0), n_def, out=gpc, where=n_def > 0)
    gpc_sd = np.full(per_wsi.shape[1], np.nan)
    np.sqrt(np.nansum((per_wsi - gpc) ** 2, axis=0) / np.maximum(n_def - 1, 1), out=gpc_sd, where=n_def > 1)
    return PathwayScores(per_wsi, counts, gpc, gpc_sd, n_def, n_scored, status)


def pathway_variance(variance: np.ndarray, scored_gene: np.ndarray, memb: Membership) -> np.ndarray:
    """A pathway's variance: the mean variance of its scored genes (NaN when none)."""
    n = memb.sum_over(scored_gene)
    total = memb.sum_over(np.where(scored_gene, variance, 0.0))
    out = np.full(memb.n_pathways, np.nan)
    np.divide(total, n, out=out, where=n > 0)
    return out
