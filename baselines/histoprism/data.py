"""Inputs of the reference model: per-WSI embeddings, expression, metadata and the gene panel.

Reading needs numpy, h5py and anndata only; torch is needed only to read ``.pt`` embeddings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gpc_bench._errors import InputError, examples
from gpc_bench.genes import strip_version
from gpc_bench.io.h5ad import read_anndata

from .config import DataConfig

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("gpc_bench.model")

SPLITS = ("train", "val", "test")


@dataclass
class Wsi:
    """One WSI's model inputs, spots in embedding order.

    Attributes
    ----------
    sample_id, cancer_type, split
        From the metadata.
    barcodes
        Spot barcodes (str), in the embedding file's order.
    embeddings
        ``N x D`` float32.
    coords
        ``N x 2`` float32 or ``None``.
    target
        ``N x G`` float32 log1p expression on the panel (NaN: gene not measured in this WSI), or
        ``None`` when no expression was loaded. Only spots with expression are kept when it is.
    """

    sample_id: str
    cancer_type: str
    split: str
    barcodes: np.ndarray
    embeddings: np.ndarray
    coords: np.ndarray | None
    target: np.ndarray | None = None


def decode(values: np.ndarray | Sequence) -> np.ndarray:
    """Barcodes as str: bytes decoded, ``[N, 1]`` arrays flattened."""
    arr = np.asarray(values, dtype=object).reshape(-1)
    return np.array([v.decode() if isinstance(v, bytes | np.bytes_) else str(v) for v in arr], dtype=object)


def read_metadata(path: str | Path) -> pd.DataFrame:  # noqa: F821
    """Read the metadata CSV (``sample_id``, ``cancer_type`` or ``oncotree_code``, ``split``)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"metadata CSV {path} not found", "set data.metadata in the model config")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)  # an empty code stays "", not NaN
    if "cancer_type" not in df and "oncotree_code" in df:
        df = df.rename(columns={"oncotree_code": "cancer_type"})
    missing = [c for c in ("sample_id", "cancer_type", "split") if c not in df]
    if missing:
        raise InputError(
            f"metadata {path} lacks column(s) {missing} (has {list(df.columns)})",
            "columns: sample_id, cancer_type (or oncotree_code), split (train/val/test)",
        )
    bad = sorted(set(df["split"]) - set(SPLITS))
    if bad:
        raise InputError(f"metadata {path}: unknown split value(s) {bad}", f"use {list(SPLITS)}")
    dup = df["sample_id"][df["sample_id"].duplicated()].tolist()
    if dup:
        raise InputError(f"metadata {path}: sample_id repeated: {examples(dup)}")
    return df.reset_index(drop=True)


def read_gene_list(path: str | Path) -> list[str]:
    """A gene panel (:func:`gpc_bench.io.genelist.read_gene_list`)."""
    from gpc_bench.io.genelist import read_gene_list as read

    return read(path, "gene panel")


def check_empty_cancer_types(cfg: DataConfig, metadata: pd.DataFrame) -> None:
    """Refuse WSIs without a cancer type unless ``data.empty_cancer_type: zeros`` (the published
    code gives them an all-zero one-hot: 271 of 501 training WSIs of its split 0)."""
    empty = metadata.loc[metadata["cancer_type"].str.strip() == "", ["sample_id", "split"]]
    if empty.empty:
        return
    by_split = empty["split"].value_counts().to_dict()
    counts = ", ".join(f"{n} {s}" for s, n in sorted(by_split.items()))
    if cfg.empty_cancer_type == "zeros":
        logger.warning(
            "%d WSIs have no cancer type (%s): they get an all-zero one-hot, as in the published code",
            len(empty), ", ".join(f"{n} {s}" for s, n in sorted(by_split.items())),
        )  # fmt: skip
        return
    raise InputError(
        f"{len(empty)} WSIs have an empty cancer type ({counts}): {examples(empty['sample_id'])}",
        "fill in cancer_type (oncotree_code), or set data.empty_cancer_type: zeros for the published "
        "all-zero one-hot",
    )


def cancer_type_list(cfg: DataConfig, metadata: pd.DataFrame) -> list[str]:
    """The one-hot order: the config's list or file, else the sorted codes of the metadata."""
    ct = cfg.cancer_types
    if ct is None:
        return sorted({c for c in metadata["cancer_type"] if c.strip()})
    if isinstance(ct, str):
        return (
            read_gene_list(ct)
            if ct.endswith(".json")
            else [line.strip() for line in Path(ct).read_text().splitlines() if line.strip()]
        )
    return list(ct)


def onehot(code: str, codes: list[str]) -> np.ndarray:
    """One-hot of ``code`` over ``codes``; an empty code is all zeros (allowed only with
    ``data.empty_cancer_type: zeros``, checked when the cohort is read), an unknown one refused."""
    if not code.strip():
        return np.zeros(len(codes), np.float32)
    if code not in codes:
        raise InputError(
            f"cancer type {code!r} is not in the model's list {examples(codes)}",
            "train with a cancer_types list that includes it, or relabel the WSI",
        )
    v = np.zeros(len(codes), np.float32)
    v[codes.index(code)] = 1.0
    return v


def embedding_path(folder: str | Path, sample_id: str) -> Path:
    """The embedding file of a WSI: ``<id>.h5``, ``<id>_embeddings.pt``, ``<id>.pt``."""
    folder = Path(folder)
    for name in (
        f"{sample_id}.h5",
        f"{sample_id}_embeddings.h5",
        f"{sample_id}_embeddings.pt",
        f"{sample_id}.pt",
    ):
        if (folder / name).is_file():
            return folder / name
    raise InputError(
        f"no embeddings for WSI {sample_id!r} in {folder}",
        f"expected {sample_id}.h5 (HEST style) or {sample_id}_embeddings.pt",
    )


def read_embeddings(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read one WSI's embeddings: ``(barcodes, embeddings N x D float32, coords N x 2 or None)``."""
    path = Path(path)
    if path.suffix == ".pt":
        import torch

        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises several types for a bad or unsafe file
            raise InputError(f"cannot read embeddings {path}: {err}".splitlines()[0]) from None
        if not isinstance(d, dict) or not d:
            raise InputError(f"embeddings {path}: expected a non-empty dict {{barcode: tensor [1, D]}}")
        barcodes = decode(list(d.keys()))
        emb = torch.stack([torch.as_tensor(v).reshape(-1) for v in d.values()]).numpy()
        coords = None
    else:
        import h5py

        try:
            with h5py.File(path, "r") as f:
                if "embeddings" not in f or "barcodes" not in f:
                    raise InputError(
                        f"embeddings {path} lacks 'embeddings' or 'barcodes' (has {list(f)})",
                        "write HEST-style files: embeddings [N x D], barcodes [N], optional coords [N x 2]",
                    )
                emb = f["embeddings"][()]
                barcodes = decode(f["barcodes"][()])
                coords = f["coords"][()].astype(np.float32) if "coords" in f else None
        except OSError as err:
            raise InputError(f"cannot read embeddings {path}: {err}") from None
    emb = np.asarray(emb, dtype=np.float32)
    if emb.ndim != 2 or len(emb) != len(barcodes):
        raise InputError(f"embeddings {path}: shape {emb.shape} does not match {len(barcodes)} barcodes")
    if not np.isfinite(emb).all():
        raise InputError(f"embeddings {path} contain NaN or inf")
    if len(set(barcodes)) < len(barcodes):
        raise InputError(f"embeddings {path}: repeated barcodes")
    return barcodes, emb, coords


class ExpressionStore:
    """Per-WSI expression from a folder of ``<id>.h5ad`` or one cohort ``.h5ad`` (read backed)."""

    def __init__(self, path: str | Path, log1p: bool = False):
        self.path = Path(path)
        self.log1p = log1p
        self._cohort = None
        if self.path.is_file():
            try:
                self._cohort = read_anndata(self.path, backed="r")
            except Exception as err:
                raise InputError(f"cannot read expression {self.path}: {err}".splitlines()[0]) from None
            if "sample_id" not in self._cohort.obs:
                raise InputError(
                    f"expression {self.path} has no obs['sample_id']", "or give a folder of <id>.h5ad"
                )
            self._rows = {}
            for i, s in enumerate(self._cohort.obs["sample_id"].astype(str).to_numpy()):
                self._rows.setdefault(s, []).append(i)
        elif not self.path.is_dir():
            raise InputError(
                f"expression {self.path} not found", "a folder of <sample_id>.h5ad or a cohort .h5ad"
            )

    def genes(self, first_sample: str) -> list[str]:
        """Gene IDs of the cohort file, or of one WSI's file (the default panel)."""
        a = self._cohort if self._cohort is not None else self._read_file(first_sample)
        return [str(g) for g in a.var_names]

    def _read_file(self, sample_id: str):

        p = self.path / f"{sample_id}.h5ad"
        if not p.is_file():
            raise InputError(f"no expression for WSI {sample_id!r}: {p} not found")
        try:
            return read_anndata(p)
        except Exception as err:
            raise InputError(f"cannot read expression {p}: {err}".splitlines()[0]) from None

    def read(self, sample_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(barcodes, genes, dense float32 spots x genes)`` of one WSI, log1p applied if asked."""
        if self._cohort is not None:
            rows = self._rows.get(sample_id)
            if rows is None:
                raise InputError(f"no spots of WSI {sample_id!r} in {self.path}")
            a = self._cohort[rows].to_memory()
        else:
            a = self._read_file(sample_id)
        x = a.X
        x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
        x = x.astype(np.float32)
        if self.log1p:
            if (x < 0).any():
                raise InputError(f"expression of {sample_id!r} has negative values but log1p is on")
            x = np.log1p(x)
        if not np.isfinite(x).all():
            raise InputError(f"expression of WSI {sample_id!r} has NaN or inf")
        return decode(a.obs_names), strip_version(np.asarray(a.var_names, dtype=str)), x


def align_target(
    sample_id: str,
    emb_barcodes: np.ndarray,
    expr: tuple[np.ndarray, np.ndarray, np.ndarray],
    panel: list[str],
    min_overlap: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Match expression spots to embedding barcodes and genes to the panel.

    Returns
    -------
    keep, target
        Indices of the embedding rows that have expression, and their ``len(keep) x len(panel)``
        target (NaN for panel genes the WSI does not measure).
    """
    barcodes, genes, x = expr
    row = {b: i for i, b in enumerate(barcodes)}
    keep = np.array([i for i, b in enumerate(emb_barcodes) if b in row], dtype=np.int64)
    share = len(keep) / max(len(emb_barcodes), 1)
    if len(keep) < len(emb_barcodes) or len(keep) < len(barcodes):
        logger.info(
            "%s: %d of %d embedding barcodes have expression (%d expression spots without embedding)",
            sample_id,
            len(keep),
            len(emb_barcodes),
            len(barcodes) - len(keep),
        )
    if share < min_overlap:
        missing = [b for b in emb_barcodes if b not in row]
        raise InputError(
            f"WSI {sample_id!r}: only {len(keep)} of {len(emb_barcodes)} embedding barcodes "
            f"({share:.0%}) are in the expression; e.g. {examples(missing, 3)} vs {examples(barcodes, 3)}",
            "embeddings and expression must use the same barcodes (lower data.min_barcode_overlap to accept)",
        )
    col = {g: j for j, g in enumerate(genes)}
    panel_ids = strip_version(np.asarray(panel, dtype=str))
    src = np.array([col.get(g, -1) for g in panel_ids])
    if (src < 0).all():
        raise InputError(
            f"WSI {sample_id!r}: none of the {len(panel)} panel genes is in its expression "
            f"(panel e.g. {examples(panel_ids, 3)}, expression e.g. {examples(genes, 3)})",
            "use the same gene ID style (symbols or Ensembl IDs) in the panel and the expression",
        )
    sel = x[[row[b] for b in emb_barcodes[keep]]]
    target = np.full((len(keep), len(panel)), np.nan, np.float32)
    have = src >= 0
    target[:, have] = sel[:, src[have]]
    return keep, target


def read_gene_map(path: str | None, panel: list[str]) -> dict[str, str]:
    """``{expression gene: panel ID}``: a JSON dict (STPath's symbol-to-Ensembl map), or built from
    gpc-bench's gene table: each panel ID maps from itself and from its symbol; a symbol of several
    panel IDs maps to the first in panel order."""
    if path:
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError) as err:
            raise InputError(f"data.gene_map {p} is not a readable JSON dict: {err}") from None
        if not isinstance(d, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in d.items()
        ):
            raise InputError(f"data.gene_map {p} must be a JSON object of gene -> panel ID strings")
        return {str(k): str(strip_version([v])[0]) for k, v in d.items()}
    from gpc_bench.genes import to_symbols

    ids = strip_version(np.asarray(panel, dtype=object))
    out = {str(g): str(g) for g in ids}
    for g, s in zip(ids.tolist(), to_symbols(ids).tolist(), strict=True):
        if s and s not in out:
            out[s] = g
    return out


def published_target(
    sample_id: str,
    emb_barcodes: np.ndarray,
    expr: tuple,
    panel: list[str],
    gene_map: dict[str, str],
    measured_only: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The published loader's targets (``get_gene_array_efficient``): every embedding spot (0 where
    the expression has no such barcode), expression genes mapped to panel IDs by ``gene_map`` with
    the values of genes mapping to one ID summed, 0 for panel genes without expression.

    With ``measured_only`` (the truth that ``predict`` writes, to score against): the same gene
    mapping, but only spots with expression, and NaN for panel genes that no expression gene maps to.
    """
    import scipy.sparse as sp

    barcodes, genes, x = expr
    row = {b: i for i, b in enumerate(barcodes)}
    src = np.array([row.get(b, -1) for b in emb_barcodes], dtype=np.int64)
    if (src < 0).all():
        raise InputError(f"WSI {sample_id!r}: no embedding barcode is in the expression")
    sel = np.zeros((len(emb_barcodes), x.shape[1]), np.float32)
    sel[src >= 0] = x[src[src >= 0]]
    pidx = {g: j for j, g in enumerate(strip_version(np.asarray(panel, dtype=object)).tolist())}
    cols = [(k, pidx.get(gene_map.get(str(g), ""), -1)) for k, g in enumerate(genes)]
    cols = [(k, j) for k, j in cols if j >= 0]
    if not cols:
        raise InputError(
            f"WSI {sample_id!r}: no expression gene maps to a panel gene (expression e.g. "
            f"{examples(genes, 3)}, panel e.g. {examples(panel, 3)})",
            "give data.gene_map (expression gene -> panel ID)",
        )
    k, j = np.array(cols).T
    m = sp.csr_matrix((np.ones(len(k), np.float32), (k, j)), shape=(x.shape[1], len(panel)))
    target = np.asarray((m.T @ sel.T).T, dtype=np.float32)  # sums genes that map to one panel ID
    if measured_only:
        keep = np.flatnonzero(src >= 0)
        target = target[keep]
        target[:, np.bincount(j, minlength=len(panel)) == 0] = np.nan
        return keep, target
    return np.arange(len(emb_barcodes)), target


class Cohort:
    """The WSIs of a config: metadata, panel, cancer types, and a per-WSI loader."""

    def __init__(
        self, cfg: DataConfig, genes: list[str] | None = None, cancer_types: list[str] | None = None
    ):
        self.cfg = cfg
        self.metadata = read_metadata(cfg.metadata)
        if not cfg.embeddings or not Path(cfg.embeddings).is_dir():
            raise InputError(f"embeddings folder {cfg.embeddings!r} not found", "set data.embeddings")
        self.expression = ExpressionStore(cfg.expression, cfg.log1p) if cfg.expression else None
        check_empty_cancer_types(cfg, self.metadata)
        self.cancer_types = list(cancer_types) if cancer_types else cancer_type_list(cfg, self.metadata)
        if genes is not None:
            self.genes = list(genes)
        elif cfg.genes:
            self.genes = read_gene_list(cfg.genes)
        elif self.expression is not None:
            train = self.sample_ids("train") or list(self.metadata["sample_id"])
            self.genes = self.expression.genes(train[0])
        else:
            raise InputError("no gene panel: set data.genes or data.expression")
        self._cache: dict[str, Wsi] = {}
        #: targets as measured (spots with expression, NaN for unmapped genes): what predict scores
        self.measured_only = False

    def gene_map(self) -> dict[str, str]:
        """Expression gene -> panel ID for ``targets: published`` (read once)."""
        if not hasattr(self, "_gene_map"):
            self._gene_map = read_gene_map(self.cfg.gene_map, self.genes)
        return self._gene_map

    def sample_ids(self, split: str) -> list[str]:
        """WSIs of a split, in metadata order."""
        return self.metadata.loc[self.metadata["split"] == split, "sample_id"].tolist()

    def load(self, sample_id: str, with_target: bool = True) -> Wsi:
        """Load (or take from the cache) one WSI."""
        key = f"{sample_id}:{with_target}"
        if key in self._cache:
            return self._cache[key]
        meta = self.metadata.set_index("sample_id").loc[sample_id]
        barcodes, emb, coords = read_embeddings(embedding_path(self.cfg.embeddings, sample_id))
        target = None
        if with_target:
            if self.expression is None:
                raise InputError("training needs expression: set data.expression")
            expr = self.expression.read(sample_id)
            if self.cfg.targets == "published":
                keep, target = published_target(
                    sample_id, barcodes, expr, self.genes, self.gene_map(), measured_only=self.measured_only
                )
            else:
                keep, target = align_target(
                    sample_id, barcodes, expr, self.genes, self.cfg.min_barcode_overlap
                )
            barcodes, emb = barcodes[keep], emb[keep]
            coords = coords[keep] if coords is not None else None
        wsi = Wsi(sample_id, str(meta["cancer_type"]), str(meta["split"]), barcodes, emb, coords, target)
        if self.cfg.cache:
            self._cache[key] = wsi
        return wsi
