"""HVG top-N PCC: per cancer type highly variable genes, macro and micro averages."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from .._errors import InputError, examples
from ..genes import strip_version

logger = logging.getLogger(__name__)


def top_variable(variance: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` genes of highest positive variance (ties: lower index first)."""
    v = np.asarray(variance, dtype=np.float64)
    cand = np.flatnonzero(np.isfinite(v) & (v > 0))
    order = cand[np.lexsort((cand, -v[cand]))]
    return order[:n]


#: file names in an HVG folder that are not a cancer type's list (HEST-Benchmark's union of lists)
NOT_A_TYPE = ("union_hvg50",)
#: HEST-Benchmark's own layout: ``<CANCER>/var_50genes.json``
HEST_LIST = "var_50genes.json"


def read_hvg_lists(path: str | Path, panel: tuple | None = None) -> dict[str | None, list[str]]:
    """Read user HVG lists.

    A JSON file ``{"genes": [...]}`` (or a bare JSON list) applies to every cancer type (key
    ``None``). A folder gives one list per cancer type, from any of:

    - ``<CANCER>.json``, ``<CANCER>.symbols.json`` or ``<CANCER>.ensembl.json``: where a type has
      several, the one matching most genes of ``panel`` (``(gene_ids, symbols)``) is read, so that a
      symbol panel reads the symbol list (without ``panel``: the first in sorted order);
    - ``<CANCER>/var_50genes.json`` (HEST-Benchmark's data layout).

    ``union_hvg50.json`` (HEST-Benchmark's union of the lists) is not a cancer type and is ignored.
    """
    path = Path(path)

    def load(p: Path) -> list[str]:
        try:
            data = json.loads(p.read_text())
            genes = data["genes"] if isinstance(data, dict) else data
            if not isinstance(genes, list) or not all(isinstance(g, str) for g in genes):
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError(
                f'HVG list {p} is not JSON of the form {{"genes": ["GENE1", ...]}}',
                "write the list as JSON with a 'genes' array of gene IDs",
            ) from None
        return genes

    if path.is_dir():
        found: dict[str, list[Path]] = {}
        for p in sorted(path.glob("*.json")):
            name = p.name[: -len(".json")]
            for suffix in (".symbols", ".ensembl"):
                if name.endswith(suffix):
                    name = name[: -len(suffix)]
            if name in NOT_A_TYPE:
                logger.info("HVG folder %s: %s is not a cancer type's list; ignored", path, p.name)
                continue
            found.setdefault(name, []).append(p)
        for sub in sorted(q for q in path.iterdir() if q.is_dir() and (q / HEST_LIST).is_file()):
            found.setdefault(sub.name, []).append(sub / HEST_LIST)
        if not found:
            raise InputError(
                f"HVG folder {path} has no <CANCER>.json or <CANCER>/{HEST_LIST} files",
                "give one JSON list per cancer type ({'genes': [...]}), as HEST-Benchmark ships them",
            )
        lists: dict[str | None, list[str]] = {}
        for name, files in found.items():
            candidates = [load(p) for p in files]
            if panel is not None and len(candidates) > 1:
                n_match = [len(match_genes(c, *panel)) for c in candidates]
                lists[name] = candidates[int(np.argmax(n_match))]  # ties: the first in sorted order
            else:
                lists[name] = candidates[0]
        return lists
    if not path.exists():
        raise InputError(f"HVG list not found: {path}", "give a JSON file or a folder of them")
    return {None: load(path)}


def lists_digest(lists: dict[str | None, list[str]]) -> str:
    """A content hash of HVG lists (name -> genes; ``None``: the list for every type): the same lists
    read from two paths hash alike."""
    import hashlib

    canon = json.dumps({("*" if k is None else k): list(v) for k, v in lists.items()}, sort_keys=True)
    return "sha256:" + hashlib.sha256(canon.encode()).hexdigest()


def match_genes(wanted: list[str], gene_ids: np.ndarray, symbols: np.ndarray) -> np.ndarray:
    """Panel indices of ``wanted`` genes, matched by gene ID (version ignored) or symbol."""
    by_id = {g: i for i, g in reversed(list(enumerate(strip_version(gene_ids).tolist())))}
    by_sym = {s: i for i, s in reversed(list(enumerate(symbols.tolist()))) if s}
    out = []
    for g in strip_version(np.asarray(wanted, dtype=object)).tolist():
        i = by_id.get(g, by_sym.get(g))
        if i is not None:
            out.append(i)
    return np.asarray(list(dict.fromkeys(out)), dtype=np.int64)


def resolve_hvg(
    cancer_types: list[str],
    variance_by_type: dict[str, np.ndarray],
    gene_ids: np.ndarray,
    symbols: np.ndarray,
    n: int,
    lists: dict[str | None, list[str]] | None,
    hvg_map: dict[str, str] | None = None,
) -> tuple[dict[str, np.ndarray], dict]:
    """The HVG gene indices of each cancer type, and a description for the summary.

    ``hvg_map`` names the list of a cohort cancer type where the names differ (``{"BRCA": "IDC"}``).
    """
    hvg_map = hvg_map or {}
    out: dict[str, np.ndarray] = {}
    info: dict = {"source": "top variance per cancer type" if lists is None else "user list"}
    if lists is not None:
        info["lists_sha256"] = lists_digest(lists)
    if lists is None:
        info["n"] = n
        for c in cancer_types:
            out[c] = top_variable(variance_by_type[c], n)
        return out, info
    unknown = sorted(v for v in hvg_map.values() if v not in lists)
    if unknown:
        raise InputError(
            f"--hvg-map names HVG lists {unknown} that the lists do not have; they have "
            f"{sorted(k for k in lists if k)}",
            "map each cohort cancer type to one of those names (e.g. --hvg-map BRCA=IDC)",
        )
    missing = [c for c in cancer_types if hvg_map.get(c, c) not in lists and None not in lists]
    if missing:
        raise InputError(
            f"no HVG list for cancer types {missing}; lists exist for {sorted(k for k in lists if k)}",
            "add <CANCER>.json for each cancer type, map the names (--hvg-map BRCA=IDC), "
            "or give one JSON list for all",
        )
    if hvg_map:
        info["map"] = dict(sorted(hvg_map.items()))
    for c in cancer_types:
        wanted = lists.get(hvg_map.get(c, c), lists.get(None))
        idx = match_genes(wanted, gene_ids, symbols)
        if len(idx) == 0:
            raise InputError(
                f"none of the {len(wanted)} HVG genes for {c} is in the panel, e.g. {examples(wanted)}; "
                f"panel genes look like {examples(gene_ids)}",
                "use the panel's gene ID style (symbols or Ensembl IDs)",
            )
        info.setdefault("n_listed", {})[c] = len(wanted)
        info.setdefault("n_in_panel", {})[c] = len(idx)
        out[c] = idx
    return out, info


def hvg_wsi_scores(
    r: np.ndarray, wsi_types: list[str], hvg: dict[str, np.ndarray], strict: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Mean r over each WSI's HVGs and how many were defined.

    Undefined genes are left out; with ``strict`` (HEST-Benchmark's and STPath's ``np.mean``) one
    undefined gene makes the WSI's (or split's) mean NaN.
    """
    scores = np.full(len(wsi_types), np.nan)
    counts = np.zeros(len(wsi_types), dtype=np.int64)
    for i, c in enumerate(wsi_types):
        vals = r[i, hvg[c]]
        ok = np.isfinite(vals)
        counts[i] = int(ok.sum())
        if counts[i] and (ok.all() or not strict):
            scores[i] = float(vals[ok].mean())
    return scores, counts


def macro_micro(scores: np.ndarray, wsi_types: list[str], strict: bool = False) -> tuple[float, float]:
    """Macro: mean over cancer types of the per-type mean; micro: mean over WSIs.

    Undefined scores are left out; with ``strict`` (``np.mean``) any undefined score makes its
    cancer type's mean, the macro and the micro NaN.
    """
    scores = np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(scores)
    if not ok.any() or (strict and not ok.all()):
        return float("nan"), float("nan")
    types = np.asarray(wsi_types, dtype=object)
    per_type = [scores[ok & (types == c)].mean() for c in sorted(set(types[ok].tolist()))]
    return float(np.mean(per_type)), float(scores[ok].mean())
