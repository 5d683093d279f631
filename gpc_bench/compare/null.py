"""Is a pathway predicted better than chance?  A variance-matched random-gene-set null.

GPC is confounded with gene variance: high-variance genes are easier to predict, so a pathway
of variable genes scores well even when the model has learned nothing about the pathway.  For
each pathway we draw random gene sets of the same size from the scored genes, level by level,
so that each draw has exactly the pathway's histogram of variance levels, and score them with
the same formula (mean over WSIs of the mean r over the set's defined genes).
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

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

COLUMNS = [
    "collection",
    "pathway",
    "n_scored",
    "gpc",
    "null_mean",
    "null_sd",
    "z",
    "p_empirical",
    "n_draws",
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


def pathway_null(run, n_draws: int = 1000, seed: int = 0) -> PathwayNull:
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
    var = run.gene_variance.set_index("gene")["variance_level"].reindex(genes)
    level = var.fillna(0).to_numpy(dtype=np.int64)
    usable = (level > 0) & np.isfinite(r).any(axis=0)
    pools = {lv: np.flatnonzero(usable & (level == lv)) for lv in np.unique(level[usable])}
    col = {g: j for j, g in enumerate(genes)}

    pg = run.pathway_genes
    pg = pg[pg["scored"].astype(bool)]
    members = pg.groupby(["collection", "pathway"], sort=False)["gene"].apply(list)
    ps = run.pathway_scores
    rows = []
    for c, name, status in zip(ps["collection"], ps["pathway"], ps["status"], strict=True):
        genes_in = [col[g] for g in members.get((c, name), []) if g in col and usable[col[g]]]
        if status != "ok" or not genes_in:
            rows.append((c, name, len(genes_in), np.nan, np.nan, np.nan, np.nan, np.nan, n_draws))
            continue
        idx_obs = np.asarray(genes_in)
        observed = float(set_scores(r, idx_obs[None, :])[0])
        rng = _stream_seed(seed, c, name)
        parts = []
        for lv, count in zip(*np.unique(level[idx_obs], return_counts=True), strict=True):
            pool = pools[lv]
            parts.append(pool[draw_without_replacement(rng, len(pool), int(count), n_draws)])
        null = set_scores(r, np.hstack(parts))
        null = null[np.isfinite(null)]
        mu, sd = float(null.mean()), float(null.std(ddof=1))
        z = (observed - mu) / sd if sd > 0 else np.nan
        p = (1 + int((null >= observed).sum())) / (null.size + 1)
        rows.append((c, name, len(genes_in), observed, mu, sd, z, p, n_draws))
    table = pd.DataFrame(rows, columns=COLUMNS)
    info = {
        "gpc_bench_version": __version__,
        "model": run.name,
        "n_draws": n_draws,
        "seed": seed,
        "method": (
            "per pathway, n_draws random gene sets drawn without replacement from the scored genes, "
            "level by level, matching the pathway's histogram of gene variance levels; scored as "
            "pathways are; z = (gpc - null_mean) / null_sd; p = (1 + #null >= gpc) / (n_draws + 1)"
        ),
        "n_pathways_tested": int(table["z"].notna().sum()),
    }
    logger.info("null for %d pathways, %d draws each", info["n_pathways_tested"], n_draws)
    return PathwayNull(table, info)
