"""Per-gene correlation tables that other pipelines publish, read into one long table.

Pathway scores depend only on the r of each (WSI, gene), so GPC can be computed from these tables
directly (``score --gene-pcc`` is the next step, issue 15). Known layouts:

- HistoPrism ``<sample>_gene_pcc.json``: ``{"pearson_corr": {gene: r}, "average_pcc": x}``, an
  undefined r written by ``json.dump`` as a bare ``NaN`` token or as ``null``;
- HEST-Benchmark ``results.json`` and STFlow ``<sample>_results.json``:
  ``{"pearson_corrs": [{"name": gene, "pearson_corr": r}, ...]}`` (HEST pools a split's spots);
- a CSV with ``sample_id``, ``gene`` and ``pcc``.

Folders as the tools leave them: pooled tables (STFlow's ``all_results.json``, r over all slides at
once; HEST-Benchmark's ``results.json``, r over a whole test split) are not WSIs: next to per-slide
tables they are reported apart (``info["pooled"]``), alone they are refused. Known side files
(``config.json``, HEST's ``summary.json``, HistoPrism's ``oncotree_average_pcc.csv`` and
``all_samples_gene_pcc.json``) are ignored and listed (``info["ignored"]``).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

from gpc_bench._errors import InputError, examples

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

_SUFFIXES = ("_gene_pcc", "_results")
#: files the tools write next to their correlation tables that are not tables of one WSI
SIDE_FILES = {
    "config.json": "run configuration (STPath, HEST-Benchmark)",
    "summary.json": "HEST-Benchmark's split summary",
    "oncotree_average_pcc.csv": "HistoPrism's per-cancer-type averages",
    "all_samples_gene_pcc.json": "HistoPrism's pooled summary",
    "results_kfold.json": "HEST-Benchmark's k-fold summary (means over splits)",
}
#: pooled tables: one r per gene over many WSIs' spots at once
POOLED = {
    "all_results.json": "STFlow: r pooled over the spots of all slides",
    "results.json": "HEST-Benchmark: r pooled over the spots of a whole test split",
}


def _sample_of(path: Path) -> str:
    stem = path.stem
    for suffix in _SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


def _value(v, where: str) -> float:
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {v!r} is not a correlation") from None


def _from_json(path: Path) -> tuple[dict, str]:
    try:
        obj = json.loads(path.read_text())  # Python's json reads NaN / Infinity tokens
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is not valid JSON: {err}", "the file may be truncated") from None
    if isinstance(obj, dict) and isinstance(obj.get("pearson_corr"), dict):
        return {
            str(g): _value(r, f"{path.name}, gene {g}") for g, r in obj["pearson_corr"].items()
        }, "histoprism"
    if isinstance(obj, dict) and isinstance(obj.get("pearson_corrs"), list):
        out = {}
        first = obj["pearson_corrs"][0] if obj["pearson_corrs"] else {}
        if isinstance(first, dict) and "mean" in first and "pearson_corr" not in first:
            raise InputError(
                f"{path} is HEST-Benchmark's k-fold summary (each gene's mean over splits), not one split",
                "give each split's results.json (one table per test split)",
            )
        for item in obj["pearson_corrs"]:
            if not isinstance(item, dict) or "name" not in item or "pearson_corr" not in item:
                raise InputError(
                    f"{path}: pearson_corrs entries need 'name' and 'pearson_corr', got {item!r}"
                )
            out[str(item["name"])] = _value(item["pearson_corr"], f"{path.name}, gene {item['name']}")
        return out, "hest"
    keys = list(obj)[:5] if isinstance(obj, dict) else type(obj).__name__
    raise InputError(
        f"{path}: not a known gene-correlation layout (keys {keys})",
        "expected {'pearson_corr': {gene: r}} (HistoPrism) or {'pearson_corrs': [{'name', 'pearson_corr'}]}",
    )


def read_gene_pcc(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """Read correlation tables (a file or a folder of them) into a long frame.

    Returns
    -------
    table, info
        ``table``: sample_id, gene, pcc (NaN where undefined), files in name order; ``info``: the
        files read and their layouts.

    Raises
    ------
    InputError
        On an unknown layout, a value that is not a number, a WSI given twice, or no table.
    """
    import pandas as pd

    path = Path(path)
    ignored, pooled = {}, {}
    if path.is_dir():
        files = []
        for p in sorted(q for q in path.iterdir() if q.suffix in (".json", ".csv")):
            if p.name in SIDE_FILES:
                ignored[p.name] = SIDE_FILES[p.name]
            elif p.name in POOLED:
                pooled[p.name] = POOLED[p.name]
            else:
                files.append(p)
    elif path.is_file():
        if path.name in POOLED or path.name in SIDE_FILES:
            pooled[path.name] = POOLED.get(path.name, SIDE_FILES.get(path.name))
        files = [] if pooled else [path]
    else:
        raise InputError(f"{path} not found")
    if not files and pooled:
        names = ", ".join(f"{k} ({v})" for k, v in pooled.items())
        raise InputError(
            f"{path} holds only pooled correlation tables: {names}; GPC averages per-WSI r, and a pooled r "
            "is not one WSI's",
            "give the per-slide tables (<sample>_results.json), or score the predictions themselves "
            "(HEST's inference_dump.pkl: gpc-bench score inference_dump.pkl --from stflow ...) under "
            "--protocol hest-pooled",
        )
    if not files:
        extra = f" (ignored side files: {sorted(ignored)})" if ignored else ""
        raise InputError(f"no .json or .csv correlation tables in {path}{extra}")
    for name, why in {**ignored, **pooled}.items():
        logger.info("%s: %s is %s; not read as a WSI", path, name, why)
    frames, layouts, seen = [], {}, {}
    for f in files:
        if f.suffix == ".csv":
            df = pd.read_csv(f, dtype={"sample_id": str, "gene": str})
            if not {"sample_id", "gene", "pcc"} <= set(df.columns):
                raise InputError(f"{f} needs columns sample_id, gene, pcc (has {list(df.columns)})")
            df = df[["sample_id", "gene", "pcc"]].astype({"pcc": float})
            layouts[f.name] = "csv"
        else:
            values, layout = _from_json(f)
            df = pd.DataFrame(
                {"sample_id": _sample_of(f), "gene": list(values), "pcc": list(values.values())}
            )
            layouts[f.name] = layout
        for s in df["sample_id"].unique():
            if s in seen:
                raise InputError(f"WSI {s!r} appears in {seen[s]} and {f.name}", "give each WSI once")
            seen[s] = f.name
        dup = df[df.duplicated(["sample_id", "gene"])]
        if len(dup):
            raise InputError(f"{f.name}: gene(s) listed twice for one WSI: {examples(dup['gene'].unique())}")
        frames.append(df)
    table = pd.concat(frames, ignore_index=True)
    return table, {
        "files": layouts,
        "pooled": pooled,
        "ignored": ignored,
        "n_wsi": int(table["sample_id"].nunique()),
        "n_genes": int(table["gene"].nunique()),
    }
