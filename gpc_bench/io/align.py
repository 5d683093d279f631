"""Align predictions with measured expression: spots by (sample_id, barcode), genes by ID."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np

from .._errors import InputError, examples
from ..genes import detect_id_style, ensembl_mask, strip_version, to_symbols

if TYPE_CHECKING:
    from .h5ad import Source

logger = logging.getLogger(__name__)

SAMPLE_KEY = "sample_id"
CANCER_KEY = "cancer_type"
UNKNOWN_CANCER = "NA"


@dataclass(frozen=True)
class Wsi:
    """The rows of one whole-slide image in both files.

    ``truth_rows[k]`` is the measured spot of prediction row ``pred_rows[k]``.
    """

    sample_id: str
    cancer_type: str
    pred_rows: np.ndarray
    truth_rows: np.ndarray

    @property
    def n_spots(self) -> int:
        return len(self.pred_rows)


@dataclass
class GeneMap:
    """Shared genes: output IDs, symbols for pathway matching and column indices."""

    genes: np.ndarray
    symbols: np.ndarray
    pred_cols: np.ndarray
    truth_cols: np.ndarray
    pred_style: str
    truth_style: str
    counts: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)


def obs_labels(source: Source, name: str) -> np.ndarray | None:
    """``obs[name]`` as strings, None where missing (None or NaN); None when there is no column."""
    col = source.obs_column(name)
    if col is None:
        return None
    values = col.tolist()
    clean = {v: None if v is None or v != v else str(v) for v in set(values)}  # per distinct value
    return np.array(list(map(clean.get, values)), dtype=object)  # a NaN that is not the key: None


def sample_ids(source: Source) -> np.ndarray:
    ids = obs_labels(source, SAMPLE_KEY)
    if ids is None:
        raise InputError(
            f"{source.role} file has no obs['{SAMPLE_KEY}'] column (found: {examples(_obs_columns(source))})",
            f"add the WSI id of every spot: adata.obs['{SAMPLE_KEY}'] = ...",
        )
    missing = np.flatnonzero([v is None or v == "" for v in ids])
    if len(missing):
        raise InputError(
            f"{source.role} file: {len(missing)} spots have no {SAMPLE_KEY}, "
            f"e.g. rows {missing[:5].tolist()}",
            "every spot needs the id of its WSI",
        )
    return ids


def _obs_columns(source) -> list[str]:
    f = getattr(source, "_file", None)
    if f is not None:
        return [k for k in f["obs"].keys() if not k.startswith("_")]
    return list(source.adata.obs.columns)


def align_spots(pred: Source, truth: Source, same_file: bool) -> list[Wsi]:
    """Match every prediction spot with its measured spot, grouped per WSI.

    WSIs are returned sorted by ``sample_id`` so that results do not depend on
    the row order of either file.
    """
    p_sample = sample_ids(pred)
    p_bc = pred.obs_names()
    if same_file:
        t_row = np.arange(pred.n_obs)
        cancer = obs_labels(pred, CANCER_KEY)
    else:
        t_sample = sample_ids(truth)
        t_bc = truth.obs_names()
        t_keys = list(zip(t_sample.tolist(), t_bc.tolist(), strict=True))
        lookup = dict(zip(t_keys, range(len(t_keys)), strict=True))
        if len(lookup) != len(t_keys):
            _refuse_repeated_spot("truth file", t_keys)
        p_keys = zip(p_sample.tolist(), p_bc.tolist(), strict=True)
        t_row = np.fromiter(map(lookup.get, p_keys, repeat(-1)), dtype=np.int64, count=pred.n_obs)
        matched = int((t_row >= 0).sum())
        if matched != pred.n_obs or matched != truth.n_obs:
            missing = np.flatnonzero(t_row < 0)
            used = np.zeros(truth.n_obs, dtype=bool)
            used[t_row[t_row >= 0]] = True
            extra = np.flatnonzero(~used)

            def listed(what, idx, sample, bc):
                if len(idx) == 0:
                    return f"every {what} spot is matched"
                return f"unmatched {what} spots e.g. {examples([f'{sample[i]}/{bc[i]}' for i in idx[:5]])}"

            raise InputError(
                f"spots do not align: {matched:,} of {pred.n_obs:,} prediction spots have a "
                f"measured spot, and {len(extra):,} of {truth.n_obs:,} truth spots have no "
                f"prediction; {listed('prediction', missing, p_sample, p_bc)}; "
                f"{listed('truth', extra, t_sample, t_bc)}",
                "both files must hold the same spots, keyed by obs['sample_id'] and obs_names "
                "(barcodes); subset one file to the other's spots before scoring",
            )
        cancer = obs_labels(pred, CANCER_KEY)
        if cancer is None:
            t_cancer = obs_labels(truth, CANCER_KEY)
            cancer = None if t_cancer is None else t_cancer[t_row]
    if same_file:
        p_keys = list(zip(p_sample.tolist(), p_bc.tolist(), strict=True))
        if len(set(p_keys)) != len(p_keys):
            _refuse_repeated_spot("predictions", p_keys)
    # group rows by sample id, ids in sorted order, rows in file order within each
    labels = p_sample.tolist()
    samples = sorted(set(labels))
    code = np.fromiter(map({s: i for i, s in enumerate(samples)}.__getitem__, labels), np.int64, len(labels))
    order = np.argsort(code, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(code, minlength=len(samples)))])
    wsis = []
    for k, sample in enumerate(samples):
        prow = order[bounds[k] : bounds[k + 1]]
        ctypes = {UNKNOWN_CANCER} if cancer is None else {(c if c else UNKNOWN_CANCER) for c in cancer[prow]}
        if len(ctypes) > 1:
            raise InputError(
                f"sample {sample!r} has several cancer types: {sorted(ctypes)}",
                "obs['cancer_type'] must be constant within a WSI",
            )
        wsis.append(Wsi(str(sample), ctypes.pop(), prow, t_row[prow]))
    return wsis


def _refuse_repeated_spot(where: str, keys: list[tuple[str, str]]) -> None:
    """Raise for the first (sample_id, barcode) key that occurs twice."""
    seen: set[tuple[str, str]] = set()
    for key in keys:
        if key in seen:
            raise InputError(
                f"{where}: spot {key[1]!r} appears twice in sample {key[0]!r}",
                "(sample_id, barcode) must identify a spot uniquely",
            )
        seen.add(key)


def _first_occurrence(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Indices of the first occurrence of each non-empty key, and how many were dropped."""
    items = keys.tolist()
    n = len(items)
    first = dict(zip(reversed(items), range(n - 1, -1, -1), strict=True))  # backwards: the first wins
    first.pop("", None)
    first.pop(None, None)
    keep = np.sort(np.fromiter(first.values(), dtype=np.int64, count=len(first)))
    return keep, n - items.count("") - items.count(None) - len(keep)


def _repeated(keys: np.ndarray) -> list[str]:
    """Keys that occur more than once, in first-seen order."""
    seen, rep = set(), {}
    for k in keys.tolist():
        if k and k in seen:
            rep[k] = None
        seen.add(k)
    return list(rep)


def align_genes(pred: Source, truth: Source, same_file: bool) -> GeneMap:
    """Match genes of both files by ID (Ensembl version suffixes are ignored).

    When one file uses Ensembl IDs and the other symbols, the Ensembl side is
    mapped to symbols (``var['gene_symbol']`` first, then the shipped table).
    A gene ID that appears twice in a file keeps its first column.
    """
    p_raw = pred.var_names()
    p_ids = strip_version(p_raw)
    p_style = detect_id_style(p_ids)
    p_sym_col = pred.var_column("gene_symbol")
    if same_file:
        t_ids, t_style = p_ids, p_style
    else:
        t_ids = strip_version(truth.var_names())
        t_style = detect_id_style(t_ids)
    t_sym_col = None  # read only when needed below
    if not same_file and (p_style != t_style or (p_style == "ensembl" and p_sym_col is None)):
        t_sym_col = truth.var_column("gene_symbol")
    if p_style == t_style:
        p_keys, t_keys = p_ids, t_ids
    else:
        p_keys = to_symbols(p_ids, p_style, p_sym_col)
        t_keys = to_symbols(t_ids, t_style, t_sym_col)
    p_keep, p_dup = _first_occurrence(p_keys)
    t_keep, t_dup = _first_occurrence(t_keys)
    warnings = []
    if p_dup or t_dup:
        warnings.append(
            f"duplicated gene IDs: {p_dup} in predictions {examples(_repeated(p_keys))}, {t_dup} in truth "
            f"{examples(_repeated(t_keys))}; the first column of each is used"
        )
        logger.warning("%s", warnings[-1])
    t_index = dict(zip(t_keys[t_keep].tolist(), t_keep.tolist(), strict=True))
    kept = p_keys[p_keep].tolist()
    pred_cols = p_keep[np.fromiter(map(t_index.__contains__, kept), bool, len(kept))]
    if len(pred_cols) == 0:
        raise InputError(
            "no shared genes between predictions and truth: predictions have "
            f"{examples(p_raw)} ({p_style} IDs), truth has "
            f"{examples(t_ids)} ({t_style} IDs)",
            "use the same gene IDs in both files, or add var['gene_symbol'] next to Ensembl IDs",
        )
    truth_cols = np.fromiter(map(t_index.__getitem__, p_keys[pred_cols].tolist()), np.int64, len(pred_cols))
    # symbols used to match pathway gene sets (each ID by what it is: mixed panels keep both kinds)
    scored_ens = ensembl_mask(p_ids[pred_cols])
    if p_style == "symbol" and not scored_ens.any():
        symbols = p_ids[pred_cols]
    else:
        sym = p_sym_col if p_sym_col is not None else None
        symbols = to_symbols(p_ids, "ensembl", sym)[pred_cols]
        if sym is None and t_sym_col is not None and t_style == "ensembl":
            t_sym = to_symbols(t_ids, "ensembl", t_sym_col)[truth_cols]
            symbols = np.where(symbols == "", t_sym, symbols)
    counts = {
        "n_genes_predictions": int(pred.n_vars),
        "n_genes_truth": int(truth.n_vars if not same_file else pred.n_vars),
        "n_genes_shared": len(pred_cols),
        "n_duplicate_gene_ids_predictions": p_dup,
        "n_duplicate_gene_ids_truth": t_dup,
        "n_genes_without_symbol": int(sum(1 for s in symbols.tolist() if not s)),
        "n_genes_ensembl_ids": int(scored_ens.sum()),
        "n_genes_symbol_ids": int((~scored_ens).sum()),
    }
    if scored_ens.any() and not scored_ens.all():
        warnings.append(
            f"the panel mixes gene ID styles: {int(scored_ens.sum()):,} Ensembl IDs (mapped to symbols) and "
            f"{int((~scored_ens).sum()):,} symbols (used as they are), "
            f"e.g. {examples(p_ids[pred_cols][~scored_ens])}"
        )
        logger.info("%s", warnings[-1])
    if counts["n_genes_without_symbol"]:
        no_sym = p_ids[pred_cols][symbols == ""]
        warnings.append(
            f"{counts['n_genes_without_symbol']:,} scored panel gene(s) have no symbol in the gene table, "
            f"e.g. {examples(no_sym)}: scored, but in no pathway (add var['gene_symbol'] to name them)"
        )
        logger.info("%s", warnings[-1])
    logger.info(
        "genes: %d shared (%d in predictions, %d in truth)",
        len(pred_cols),
        counts["n_genes_predictions"],
        counts["n_genes_truth"],
    )
    return GeneMap(p_raw[pred_cols], symbols, pred_cols, truth_cols, p_style, t_style, counts, warnings)
