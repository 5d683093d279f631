"""Is a pathway predicted better than chance?  A matched random-gene-set null that depth cannot pass.

GPC is confounded with gene variance and with expression level: variable and highly expressed genes
are easier to predict (and follow sequencing depth more), so a pathway of such genes scores well
even when the model has learned nothing about the pathway.  For each pathway we draw random gene
sets of the same size from the scored genes, stratum by stratum, so that each draw has exactly the
pathway's histogram of strata, and score them with the same formula (mean over WSIs of the mean r
over the set's defined genes). A stratum is a gene variance level and, within it, a quintile of
mean expression over the test set (:data:`N_MEAN_LEVELS`); where a stratum holds fewer genes than
the pathway takes from it, that part is drawn from its whole variance level (counted in
``n_unmatched``).

The same random sets are scored on the raw r and on the depth-adjusted r, so a pathway that a
depth-only prediction "recovers" has a large raw z and no adjusted z. q-values are
Benjamini-Hochberg over the pathways of each collection.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._errors import InputError
from .._version import __version__
from ..io.run import Run, load_run
from ..io.runfolder import atomic_files, dumps_json
from .stats import bh_adjust

if TYPE_CHECKING:
    import pandas as pd

    from ..result import Result

logger = logging.getLogger(__name__)

#: mean-expression quantiles within each variance level
N_MEAN_LEVELS = 5
_STATS = ("null_mean", "null_sd", "z", "p_empirical", "q")
COLUMNS = [
    "collection",
    "pathway",
    "n_scored",
    "gpc",
    *_STATS,
    "gpc_depth_adjusted",
    *(f"{c}_depth_adjusted" for c in _STATS),
    "n_draws",
    "n_unmatched",
]


@dataclass
class PathwayNull:
    """``table`` (one row per pathway, columns :data:`COLUMNS`) and ``info`` (method, seed, draws)."""

    table: pd.DataFrame
    info: dict

    def write(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write ``pathway_null.csv`` and ``pathway_null.json`` into ``folder`` (atomically, as one
        unit: see :func:`gpc_bench.io.runfolder.atomic_files`)."""
        folder = Path(folder)
        files = {
            "pathway_null.csv": lambda p: self.table.to_csv(p, index=False, lineterminator="\n"),
            "pathway_null.json": lambda p: p.write_text(dumps_json(self.info)),
        }
        atomic_files(folder, files, kind="null", overwrite=overwrite)
        return folder / "pathway_null.csv"


def draw_without_replacement(rng: np.random.Generator, pool: int, k: int, n: int) -> np.ndarray:
    """``n`` rows of ``k`` distinct indices in ``range(pool)``, each row uniform over k-subsets.

    Small ``k`` relative to ``pool``: draw with replacement and redraw the rows that hold a
    duplicate (rejection keeps rows uniform).  Otherwise: the first ``k`` of a random permutation.
    """
    if k > pool:
        raise ValueError(f"cannot draw {k} distinct items from {pool}")
    if k == 0:
        return np.empty((n, 0), dtype=np.int64)
    if k * k > pool:
        return np.argsort(rng.random((n, pool)), axis=1)[:, :k]
    out = rng.integers(0, pool, size=(n, k))
    while True:
        s = np.sort(out, axis=1)
        bad = np.flatnonzero((s[:, 1:] == s[:, :-1]).any(axis=1))
        if bad.size == 0:
            return out
        out[bad] = rng.integers(0, pool, size=(bad.size, k))


def set_scores(r: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Score gene sets the way ``score`` scores pathways.

    Parameters
    ----------
    r
        ``(n_wsi, n_genes)`` correlations, NaN where undefined.
    idx
        ``(n_sets, k)`` gene indices.

    Returns
    -------
    ``(n_sets,)``: mean over WSIs (where defined) of the mean r over the set's defined genes.
    """
    sub = r[:, idx]  # (n_wsi, n_sets, k)
    ok = np.isfinite(sub)
    n = ok.sum(axis=2)
    per_wsi = np.full(n.shape, np.nan)
    np.divide(np.where(ok, sub, 0.0).sum(axis=2), n, out=per_wsi, where=n > 0)
    okw = np.isfinite(per_wsi)
    m = okw.sum(axis=0)
    out = np.full(idx.shape[0], np.nan)
    np.divide(np.where(okw, per_wsi, 0.0).sum(axis=0), m, out=out, where=m > 0)
    return out


def _stream_seed(seed: int, collection: str, pathway: str) -> np.random.Generator:
    """An independent stream per pathway: results do not depend on which other pathways ran."""
    return np.random.default_rng([seed, zlib.crc32(f"{collection}\t{pathway}".encode())])


def _strata(run: Run, genes: np.ndarray, level: np.ndarray, usable: np.ndarray) -> tuple[np.ndarray, str]:
    """Per gene: its stratum (variance level x 10 + mean-expression quintile within the level; 0 for
    unusable genes), and how the means were had."""
    stats = run.stats if run.has_stats else None
    mean = None
    if stats is not None and stats.has_truth_moments:
        n = stats.n_spots.astype(np.float64)[:, None]
        m = stats.moments[:, 0]
        ok = np.isfinite(m)
        w = np.where(ok, n, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            cohort = (np.where(ok, m, 0.0) * w).sum(0) / w.sum(0)
        at = {g: j for j, g in enumerate(stats.genes.astype(str).tolist())}
        mean = np.array([cohort[at[g]] if g in at else np.nan for g in genes.astype(str).tolist()])
    strata = np.where(usable, level * 10, 0)
    if mean is None:
        return strata, "variance level only (the run holds no truth means)"
    for lv in np.unique(level[usable]):
        sel = np.flatnonzero(usable & (level == lv) & np.isfinite(mean))
        if len(sel) < N_MEAN_LEVELS:
            continue
        ranks = np.argsort(np.argsort(mean[sel], kind="stable"), kind="stable")
        strata[sel] = lv * 10 + 1 + ranks * N_MEAN_LEVELS // len(sel)
    return strata, f"variance level x {N_MEAN_LEVELS} mean-expression quantiles within it"


def _null_stats(observed: float, null: np.ndarray) -> tuple:
    null = null[np.isfinite(null)]
    if not np.isfinite(observed) or null.size < 2:
        return (np.nan,) * 4
    mu, sd = float(null.mean()), float(null.std(ddof=1))
    z = (observed - mu) / sd if sd > 0 else np.nan
    return mu, sd, z, (1 + int((null >= observed).sum())) / (null.size + 1)


def _draw(rng, idx_obs, strata, level, pools, level_pools, n_draws) -> tuple[np.ndarray, int]:
    """Random sets matching the strata of ``idx_obs`` (whole variance levels where a stratum is short)."""
    parts, unmatched = [], 0
    for st, count in zip(*np.unique(strata[idx_obs], return_counts=True), strict=True):
        pool = pools[st]
        if len(pool) < count:  # too few genes in the stratum: its variance level
            pool = level_pools[st // 10]
            unmatched += int(count)
        parts.append(pool[draw_without_replacement(rng, len(pool), int(count), n_draws)])
    return np.hstack(parts), unmatched


def pathway_null(run: str | Path | Result, n_draws: int = 1000, seed: int = 0) -> PathwayNull:
    """Variance-matched random-gene-set null for every scored pathway of a run.

    Parameters
    ----------
    run
        A run folder (or :class:`~gpc_bench.io.run.Run`) written by ``gpc-bench score``.
    n_draws
        Random sets per pathway.
    seed
        Seed; each pathway draws from its own stream derived from (seed, collection, pathway).

    Returns
    -------
    PathwayNull
        ``z = (gpc - null_mean) / null_sd``; ``p_empirical = (1 + #{null >= gpc}) / (n_draws + 1)``
        (one-sided: better than chance).
    """
    import pandas as pd

    run = run if isinstance(run, Run) else load_run(run)
    if n_draws < 2:
        raise InputError("the null needs at least 2 draws", "use --draws 1000")
    gs = run.gene_scores
    wide = gs.pivot(index="sample_id", columns="gene", values="pcc")
    genes = wide.columns.to_numpy()
    r = wide.to_numpy(dtype=np.float64)
    r_adj = None
    if "r_depth_adjusted" in gs and gs["r_depth_adjusted"].notna().any():
        r_adj = gs.pivot(index="sample_id", columns="gene", values="r_depth_adjusted")
        r_adj = r_adj.reindex(index=wide.index, columns=genes).to_numpy(dtype=np.float64)
    var = run.gene_variance.set_index("gene")["variance_level"].reindex(genes)
    level = var.fillna(0).to_numpy(dtype=np.int64)
    usable = (level > 0) & np.isfinite(r).any(axis=0)
    strata, matched_on = _strata(run, genes, level, usable)
    pools = {st: np.flatnonzero(usable & (strata == st)) for st in np.unique(strata[usable])}
    level_pools = {lv: np.flatnonzero(usable & (level == lv)) for lv in np.unique(level[usable])}
    col = {g: j for j, g in enumerate(genes)}

    pg = run.pathway_genes
    pg = pg[pg["scored"].astype(bool)]
    members = pg.groupby(["collection", "pathway"], sort=False)["gene"].apply(list)
    ps = run.pathway_scores
    rows = []
    empty = (np.nan,) * 4
    for c, name, status in zip(ps["collection"], ps["pathway"], ps["status"], strict=True):
        genes_in = [col[g] for g in members.get((c, name), []) if g in col and usable[col[g]]]
        if status != "ok" or not genes_in:
            rows.append((c, name, len(genes_in), np.nan, *empty, np.nan, np.nan, *empty, np.nan, n_draws, 0))
            continue
        idx_obs = np.asarray(genes_in)
        draws, unmatched = _draw(
            _stream_seed(seed, c, name), idx_obs, strata, level, pools, level_pools, n_draws
        )
        observed = float(set_scores(r, idx_obs[None, :])[0])
        raw = _null_stats(observed, set_scores(r, draws))
        adj_obs, adj = np.nan, empty
        if r_adj is not None:
            adj_obs = float(set_scores(r_adj, idx_obs[None, :])[0])
            adj = _null_stats(adj_obs, set_scores(r_adj, draws))
        rows.append(
            (c, name, len(genes_in), observed, *raw, np.nan, adj_obs, *adj, np.nan, n_draws, unmatched)
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    for p, q in (("p_empirical", "q"), ("p_empirical_depth_adjusted", "q_depth_adjusted")):
        for c in table["collection"].unique():
            sel = ((table["collection"] == c) & table[p].notna()).to_numpy()
            if sel.any():
                table.loc[sel, q] = bh_adjust(table.loc[sel, p].to_numpy())
    info = {
        "gpc_bench_version": __version__,
        "model": run.name,
        "n_draws": n_draws,
        "seed": seed,
        "matched_on": matched_on,
        "method": (
            "per pathway, n_draws random gene sets drawn without replacement from the scored genes, "
            "stratum by stratum, matching the pathway's histogram of strata; scored as pathways are, on "
            "the raw r and on the depth-adjusted r (the same sets); z = (gpc - null_mean) / null_sd; "
            "p = (1 + #null >= gpc) / (n_draws + 1); q: Benjamini-Hochberg per collection"
        ),
        "n_pathways_tested": int(table["z"].notna().sum()),
        "depth_adjusted": r_adj is not None,
    }
    logger.info("null for %d pathways, %d draws each", info["n_pathways_tested"], n_draws)
    return PathwayNull(table, info)
