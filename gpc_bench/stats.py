"""Per-WSI statistics: what one streaming pass over the spots leaves, and all that evaluation needs.

A run is two stages with this stored interface between them::

    inputs --(stream each WSI once)--> WsiStats --(evaluate)--> Result

:class:`WsiStats` holds, per WSI and gene, Pearson r, a flag and the co-moments of truth and
prediction (truth mean and M2, prediction mean and M2, co-moment, and the co-moments of each with
the spot's depth covariate), per WSI the mean and M2 of that covariate, plus the gene panel, the
pathway collection and HVG lists the run was scored with, and its provenance. Every reported
number is recomputed from it by :func:`gpc_bench.evaluate.evaluate`, without the input files.
It is written into every run folder as ``wsi_stats/`` (docs/outputs.md); a shard of a cohort
(``score --shard K/N``) writes only this folder, and :func:`concat` joins shards exactly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ._errors import InputError
from .io.gmt import GeneSet, PathwayCollection, read_gmt, write_gmt
from .io.runfolder import dumps_json

#: the folder of a run (or a shard's partial run) that holds the statistics
FOLDER = "wsi_stats"
FORMAT = 3
#: formats this version reads (1: before the depth co-moments, which then read as unknown; 2: before
#: the pathway activities)
READS = (1, 2, 3)
#: the per-(WSI, gene) moment columns, in the order of :attr:`WsiStats.moments`' second axis
MOMENTS = (
    "truth_mean", "truth_m2", "pred_mean", "pred_m2", "comoment",
    "truth_depth_comoment", "pred_depth_comoment",
)  # fmt: skip
#: the per-WSI moments of the depth covariate, in the order of :attr:`WsiStats.depth`'s columns
DEPTH = ("depth_mean", "depth_m2")
#: the per-(WSI, gene) Moran's I columns (``--spatial``), in the order of :attr:`WsiStats.moran`
MORAN = ("truth_moran", "pred_moran")
#: the per-(WSI, pathway) Moran's I of the activity maps (``--activity --spatial``)
ACTIVITY_MORAN = ("act_truth_moran", "act_pred_moran")
_HINT = "the statistics folder is damaged; score the model again"


@dataclass(frozen=True)
class SpotProfiles:
    """Sampled spots' expression (``cluster="spot"`` only): predictions, truth, cancer types."""

    pred: np.ndarray
    truth: np.ndarray
    labels: np.ndarray


@dataclass
class WsiStats:
    """Per-WSI sufficient statistics of a cohort (or of one shard of it).

    Attributes
    ----------
    sample_ids, cancer_types, n_spots
        Per WSI, sorted by sample id (``n_spots`` 0 when unknown: correlations given).
    genes, symbols
        Panel gene IDs as the predictions name them, and the HGNC symbol used to match pathways
        (``""`` when none).
    r, flags
        ``(n_wsi, n_genes)`` Pearson r (under the config's constant-prediction rule) and flags
        (:data:`gpc_bench.metrics.pcc.FLAG_NAMES`).
    moments
        ``(n_wsi, 7, n_genes)`` float64, :data:`MOMENTS` (NaN where unknown), or ``None``.
    depth
        ``(n_wsi, 2)`` mean and M2 of the depth covariate (:data:`DEPTH`), or ``None``.
    activity
        ``(n_wsi, 7, n_sets)`` moments of the pathway activities
        (:data:`gpc_bench.metrics.activity.ACTIVITY`), pathways sorted by (collection, name), or
        ``None`` (correlations given, or genes taken away since).
    moran
        ``(n_wsi, 2, n_genes)`` Moran's I of truth and prediction (:mod:`gpc_bench.metrics.spatial`),
        or ``None`` (scored without ``--spatial``).
    activity_moran
        ``(n_wsi, 2, n_sets)`` Moran's I of the measured and predicted activity maps (``--activity
        --spatial``), or ``None``.
    domains
        ``(n_wsi, len(DOMAINS))`` tissue-domain agreement per WSI (``--domains``,
        :data:`gpc_bench.metrics.domains.DOMAINS`), or ``None``.
    collection
        The pathway collection of the run.
    hvg_lists
        The HVG lists read for ``--hvg`` (``None`` for top-N HVGs).
    meta
        Provenance and config: model, control, inputs, gene-alignment counts and warnings, the
        scale check, the cohort and shard (docs/outputs.md).
    spots
        Sampled spot profiles for spot-level clustering, or ``None``.
    gene_variance
        Gene variance given from outside (``score --gene-pcc --gene-variance``), or ``None``.
    """

    sample_ids: list[str]
    cancer_types: list[str]
    n_spots: np.ndarray
    genes: np.ndarray
    symbols: np.ndarray
    r: np.ndarray
    flags: np.ndarray
    moments: np.ndarray | None
    collection: PathwayCollection
    hvg_lists: dict | None = None
    meta: dict = field(default_factory=dict)
    spots: SpotProfiles | None = None
    gene_variance: np.ndarray | None = None
    depth: np.ndarray | None = None
    activity: np.ndarray | None = None
    moran: np.ndarray | None = None
    activity_moran: np.ndarray | None = None
    domains: np.ndarray | None = None

    @property
    def n_wsi(self) -> int:
        return len(self.sample_ids)

    @property
    def has_truth_moments(self) -> bool:
        """Whether the truth's per-WSI mean and M2 are known for every WSI (not NaN throughout)."""
        return self.moments is not None and bool(np.isfinite(self.moments[:, 1]).any(axis=1).all())

    @property
    def has_prediction_moments(self) -> bool:
        return self.moments is not None and bool(np.isfinite(self.moments[:, 3]).any(axis=1).all())

    @property
    def has_depth(self) -> bool:
        """Whether the truth's co-moments with the depth covariate are known for every WSI."""
        return (
            self.has_truth_moments
            and self.depth is not None
            and bool(np.isfinite(self.depth).all())
            and bool(np.isfinite(self.moments[:, 5]).any(axis=1).all())
        )

    def take(self, wsi: np.ndarray | None = None, genes: np.ndarray | None = None) -> WsiStats:
        """The statistics of the WSIs and genes at these indices (all when ``None``)."""
        w = np.arange(self.n_wsi) if wsi is None else np.asarray(wsi, dtype=np.int64)
        g = np.arange(len(self.genes)) if genes is None else np.asarray(genes, dtype=np.int64)
        return replace(
            self,
            sample_ids=[self.sample_ids[i] for i in w],
            cancer_types=[self.cancer_types[i] for i in w],
            n_spots=self.n_spots[w],
            genes=self.genes[g],
            symbols=self.symbols[g],
            r=self.r[np.ix_(w, g)],
            flags=self.flags[np.ix_(w, g)],
            moments=None if self.moments is None else self.moments[w][:, :, g],
            depth=None if self.depth is None else self.depth[w],
            gene_variance=None if self.gene_variance is None else self.gene_variance[g],
            # the activities average their pathways' genes: fewer genes, other activities
            activity=None if self.activity is None or genes is not None else self.activity[w],
            moran=None if self.moran is None else self.moran[w][:, :, g],
            activity_moran=None
            if self.activity_moran is None or genes is not None
            else self.activity_moran[w],
            # the domains are clusters of the genes scored: fewer genes, other domains
            domains=None if self.domains is None or genes is not None else self.domains[w],
        )

    # -- the stored form -------------------------------------------------------------------------

    def write(self, folder: Path) -> None:
        """Write ``folder/wsi_stats/`` (``folder`` is a temporary folder being built atomically)."""
        from ._table import Table, categorical

        d = Path(folder) / FOLDER
        (d / "pathways").mkdir(parents=True)
        n_wsi, n_genes = self.r.shape
        depth = self.depth if self.depth is not None else np.full((n_wsi, 2), np.nan)
        wsis = {
            "sample_id": np.asarray(self.sample_ids, dtype=object),
            "cancer_type": np.asarray(self.cancer_types, dtype=object),
            "n_spots": self.n_spots.astype(np.int64),
            **{name: depth[:, i].astype(np.float64) for i, name in enumerate(DEPTH)},
        }
        if self.domains is not None:
            from .metrics.domains import DOMAINS

            wsis |= {name: self.domains[:, i].astype(np.float64) for i, name in enumerate(DOMAINS)}
        Table(wsis).write_parquet(d / "wsis.parquet")
        genes = {
            "gene": self.genes.astype(str).astype(object),
            "symbol": self.symbols.astype(str).astype(object),
        }
        if self.gene_variance is not None:
            genes["gene_variance"] = self.gene_variance
        Table(genes).write_parquet(d / "genes.parquet")
        moments = (
            self.moments if self.moments is not None else np.full((n_wsi, len(MOMENTS), n_genes), np.nan)
        )
        cols = {
            "sample_id": categorical(np.repeat(np.arange(n_wsi), n_genes), self.sample_ids),
            "gene": categorical(np.tile(np.arange(n_genes), n_wsi), self.genes.astype(str)),
            "pcc": self.r.ravel(),
            "flag": self.flags.ravel().astype(np.int8),
        }
        cols |= {name: moments[:, i].ravel() for i, name in enumerate(MOMENTS)}
        if self.moran is not None:
            cols |= {name: self.moran[:, i].ravel() for i, name in enumerate(MORAN)}
        Table(cols).write_parquet(d / "gene_stats.parquet")
        if self.activity is not None:
            from .metrics.activity import ACTIVITY

            sets = sorted(self.collection.sets, key=lambda s: (s.collection, s.name))
            n_sets = len(sets)
            act = {
                "sample_id": categorical(np.repeat(np.arange(n_wsi), n_sets), self.sample_ids),
                "collection": np.tile(np.asarray([s.collection for s in sets], dtype=object), n_wsi),
                "pathway": np.tile(np.asarray([s.name for s in sets], dtype=object), n_wsi),
            }
            act |= {name: self.activity[:, i].ravel() for i, name in enumerate(ACTIVITY)}
            if self.activity_moran is not None:
                act |= {name: self.activity_moran[:, i].ravel() for i, name in enumerate(ACTIVITY_MORAN)}
            Table(act).write_parquet(d / "activity.parquet")
        if self.spots is not None:
            s = self.spots
            np.savez(d / "spots.npz", pred=s.pred, truth=s.truth, labels=s.labels.astype(str))
        colls = self.collection.collections
        for i, c in enumerate(colls):
            write_gmt(d / "pathways" / f"{i:02d}.gmt", [s for s in self.collection.sets if s.collection == c])
        meta = dict(self.meta) | {
            "format": FORMAT,
            "has_moments": self.moments is not None,
            "pathways": {
                "collections": colls,
                "sources": self.collection.sources,
                "manifest": self.collection.manifest,
            },
            "hvg_lists": None if self.hvg_lists is None else [[k, v] for k, v in self.hvg_lists.items()],
        }
        (d / "meta.json").write_text(dumps_json(meta))


def read_stats(folder: str | Path) -> WsiStats:
    """Read the statistics of a run folder or partial run folder (``folder/wsi_stats/``)."""
    import pyarrow.parquet as pq

    d = Path(folder) / FOLDER
    if not (d / "meta.json").is_file():
        raise InputError(
            f"{folder} holds no per-WSI statistics ({FOLDER}/meta.json)",
            "give run folders or shard folders written by this gpc-bench (score again if it is older)",
        )
    try:
        meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") not in READS:
            raise ValueError(f"format {meta.get('format')!r}, expected one of {READS}")
        wsis = pq.read_table(d / "wsis.parquet")
        genes = pq.read_table(d / "genes.parquet")
        n_wsi, n_genes = wsis.num_rows, genes.num_rows
        stored = MOMENTS if meta["format"] >= 2 else MOMENTS[:5]
        cols = ["pcc", "flag", *(stored if meta["has_moments"] else ())]
        has_moran = all(m in pq.read_schema(d / "gene_stats.parquet").names for m in MORAN)
        gs = pq.read_table(d / "gene_stats.parquet", columns=cols + (list(MORAN) if has_moran else []))
        if gs.num_rows != n_wsi * n_genes:
            raise ValueError(f"gene_stats has {gs.num_rows} rows, expected {n_wsi} x {n_genes}")

        def col(t, name, dtype=None):
            return t.column(name).to_numpy(zero_copy_only=False).astype(dtype or object, copy=False)

        moments = None
        if meta["has_moments"]:
            known = {m: col(gs, m, np.float64).reshape(n_wsi, n_genes) for m in stored}
            unknown = np.full((n_wsi, n_genes), np.nan)
            moments = np.stack([known.get(m, unknown) for m in MOMENTS], axis=1)
        moran = None
        if has_moran:
            moran = np.stack([col(gs, m, np.float64).reshape(n_wsi, n_genes) for m in MORAN], axis=1)
        depth = None
        if all(c in wsis.column_names for c in DEPTH):
            depth = np.stack([col(wsis, c, np.float64) for c in DEPTH], axis=1)
        domains = None
        from .metrics.domains import DOMAINS

        if all(c in wsis.column_names for c in DOMAINS):
            domains = np.stack([col(wsis, c, np.float64) for c in DOMAINS], axis=1).reshape(n_wsi, -1)
        activity = activity_moran = None
        if (d / "activity.parquet").is_file():
            from .metrics.activity import ACTIVITY

            names = pq.read_schema(d / "activity.parquet").names
            with_moran = all(m in names for m in ACTIVITY_MORAN)
            at = pq.read_table(
                d / "activity.parquet", columns=list(ACTIVITY) + (list(ACTIVITY_MORAN) if with_moran else [])
            )
            n_sets = at.num_rows // max(n_wsi, 1)
            if at.num_rows != n_wsi * n_sets:
                raise ValueError(f"activity has {at.num_rows} rows, not a multiple of {n_wsi} WSIs")
            activity = np.stack([col(at, m, np.float64).reshape(n_wsi, n_sets) for m in ACTIVITY], axis=1)
            if with_moran:
                activity_moran = np.stack(
                    [col(at, m, np.float64).reshape(n_wsi, n_sets) for m in ACTIVITY_MORAN], axis=1
                )
        spots = None
        if (d / "spots.npz").is_file():
            with np.load(d / "spots.npz", allow_pickle=False) as z:
                spots = SpotProfiles(z["pred"], z["truth"], z["labels"].astype(object))
        pw = meta.pop("pathways")
        sets = []
        for i, c in enumerate(pw["collections"]):
            sets += [GeneSet(c, n, g, desc) for n, desc, g in read_gmt(d / "pathways" / f"{i:02d}.gmt")]
        hvg = meta.pop("hvg_lists")
        return WsiStats(
            sample_ids=[str(s) for s in col(wsis, "sample_id")],
            cancer_types=[str(s) for s in col(wsis, "cancer_type")],
            n_spots=col(wsis, "n_spots", np.int64),
            genes=col(genes, "gene"),
            symbols=col(genes, "symbol"),
            r=col(gs, "pcc", np.float64).reshape(n_wsi, n_genes),
            flags=col(gs, "flag", np.int8).reshape(n_wsi, n_genes),
            moments=moments,
            depth=depth,
            collection=PathwayCollection(sets, pw["sources"], pw["manifest"]),
            hvg_lists=None if hvg is None else {k: list(v) for k, v in hvg},
            meta=meta,
            spots=spots,
            activity=activity,
            moran=moran,
            activity_moran=activity_moran,
            domains=domains,
            gene_variance=col(genes, "gene_variance", np.float64)
            if "gene_variance" in genes.column_names
            else None,
        )
    except InputError:
        raise
    except Exception as err:  # truncated parquet, edited JSON, missing file: any reader error
        raise InputError(f"{d} cannot be read: {type(err).__name__}: {str(err)[:200]}", _HINT) from None


def cohort_key(sample_ids: Iterable[str]) -> str:
    """A digest of a cohort's sorted sample ids (shards of one cohort share it)."""
    h = hashlib.sha256("\n".join(sorted(map(str, sample_ids))).encode())
    return "sha256:" + h.hexdigest()[:16]


def shard_indices(n_wsi: int, k: int, n: int) -> np.ndarray:
    """The WSIs of shard ``k`` of ``n`` (1-based): every ``n``-th WSI in sample-id order, from the
    ``k``-th. Round-robin keeps shards balanced in WSI count and never empty while ``n <= n_wsi``."""
    if not 1 <= k <= n:
        raise InputError(f"shard {k}/{n}: K must be between 1 and N", "write --shard K/N, e.g. --shard 1/4")
    return np.arange(k - 1, n_wsi, n, dtype=np.int64)


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)``."""
    try:
        k, n = (int(p) for p in str(text).split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r} is not K/N", "write --shard K/N, e.g. --shard 2/8") from None
    if n < 1 or not 1 <= k <= n:
        raise InputError(f"--shard {text}: need 1 <= K <= N", "write --shard K/N, e.g. --shard 2/8")
    return k, n
