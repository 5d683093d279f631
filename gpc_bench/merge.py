"""Merge shards of a cohort (``score --shard K/N``) into one run, exactly.

Each shard holds the per-WSI statistics of its WSIs (:mod:`gpc_bench.stats`); cohort-level numbers
(gene variance and its levels, per-type HVGs, WSI profiles) are mergeable from them (Chan's
formula), so :func:`merge` evaluates the joined statistics with the same
:func:`gpc_bench.evaluate.evaluate` as one ``score`` of the whole cohort: the tables are
byte-identical, and ``summary.json`` too (only ``run_info.json`` differs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._errors import InputError
from .stats import WsiStats, cohort_key, read_stats

if TYPE_CHECKING:
    from .result import Result

logger = logging.getLogger(__name__)

#: meta fields every shard of one cohort shares (config, inputs, panel alignment)
_SHARED_META = ("model", "control", "config", "inputs", "gene_counts", "gene_warnings", "cohort")


def _problems(parts: dict[str, WsiStats]) -> list[str]:
    """Every reason the parts are not the shards of one run, each naming the parts involved."""
    names = list(parts)
    first_name, first = names[0], parts[names[0]]
    out = []
    not_shards = [n for n, s in parts.items() if s.meta.get("shard") is None]
    if not_shards:
        return [f"{', '.join(not_shards)}: not a shard (written without --shard K/N)"]
    counts = {n: s.meta["shard"]["n"] for n, s in parts.items()}
    if len(set(counts.values())) > 1:
        out.append("different shard counts N: " + ", ".join(f"{n}: {v}" for n, v in counts.items()))
    for key in _SHARED_META:
        differ = [n for n in names[1:] if parts[n].meta.get(key) != first.meta.get(key)]
        if differ:
            out.append(f"{', '.join(differ)} differ from {first_name} in {key}{_detail(key)}")
    checks = {
        "pathway collection": lambda s: s.collection.collection_id,
        "gene panel": lambda s: (s.genes.tolist(), s.symbols.tolist()),
        "HVG lists": lambda s: s.hvg_lists,
    }
    for what, get in checks.items():
        differ = [n for n in names[1:] if get(parts[n]) != get(first)]
        if differ:
            out.append(f"{', '.join(differ)} differ from {first_name} in their {what}")
    by_k: dict[int, list[str]] = {}
    for n, s in parts.items():
        by_k.setdefault(s.meta["shard"]["k"], []).append(n)
    out += [f"shard {k} given twice: {', '.join(v)}" for k, v in sorted(by_k.items()) if len(v) > 1]
    n_shards = max(counts.values())
    missing = sorted(set(range(1, n_shards + 1)) - set(by_k))
    if missing:
        out.append(f"shard(s) {missing} of {n_shards} missing: give every part_K folder")
    seen: dict[str, str] = {}
    for n, s in parts.items():
        for w in s.sample_ids:
            if w in seen and seen[w] != n:
                out.append(f"WSI {w!r} is in both {seen[w]} and {n}")
            seen.setdefault(w, n)
    return out


def _detail(key: str) -> str:
    return {
        "config": " (scored with different options: use one command line for every shard)",
        "inputs": " (different predictions or truth files, by name or sha256)",
        "cohort": " (different cohorts: the predictions hold other WSIs)",
    }.get(key, "")


def concat(parts: list[WsiStats]) -> WsiStats:
    """The statistics of several shards as one cohort, WSIs in sample-id order."""
    first = parts[0]
    ids = [w for p in parts for w in p.sample_ids]
    order = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    cat = lambda get: np.concatenate([get(p) for p in parts])[order]  # noqa: E731
    types = [t for p in parts for t in p.cancer_types]
    head = ids[order[0]] if len(ids) else None
    scale = next((p.meta["scale_check"] for p in parts if p.meta["scale_check"]["sample_id"] == head), None)
    meta = dict(first.meta) | {"shard": None, "scale_check": scale or {"sample_id": None, "warnings": []}}
    optional = {  # what a part may lack (then the merged statistics lack it too)
        name: cat(lambda p, name=name: getattr(p, name)) if all(getattr(p, name) is not None for p in parts)
        else None
        for name in ("depth", "activity", "moran", "activity_moran", "domains")
    }  # fmt: skip
    return replace(
        first,
        sample_ids=[ids[i] for i in order],
        cancer_types=[types[i] for i in order],
        n_spots=cat(lambda p: p.n_spots),
        r=cat(lambda p: p.r),
        flags=cat(lambda p: p.flags),
        moments=cat(lambda p: p.moments),
        **optional,
        meta=meta,
    )


def merge(
    parts: Sequence[str | Path | WsiStats], *, out: str | Path | None = None, overwrite: bool = False
) -> Result:
    """Evaluate the shards of one cohort as one run.

    Parameters
    ----------
    parts
        Shard folders written by ``gpc-bench score --shard K/N --out part_K`` (or their
        :class:`~gpc_bench.stats.WsiStats`), every K of one N exactly once.
    out
        When given, write the run folder there.
    overwrite
        Replace an existing run folder at ``out``.

    Returns
    -------
    gpc_bench.result.Result
        Tables byte-identical to one ``score`` of the whole cohort.

    Raises
    ------
    InputError
        Listing every problem: parts of different configs, truth, predictions, collections or
        gene panels; a shard given twice or missing; a WSI in two parts.
    """
    from .evaluate import evaluate
    from .io.runfolder import check_out_dir

    t0 = time.perf_counter()
    paths = [p for p in parts if isinstance(p, str | Path)]
    if out is not None:
        check_out_dir(out, overwrite, inputs=paths)
    if not parts:
        raise InputError("no shard folders given", "gpc-bench merge part_* --out RUN")
    loaded: dict[str, WsiStats] = {}
    for i, part in enumerate(parts):
        label = str(part) if isinstance(part, str | Path) else f"part {i + 1}"
        label = label if label not in loaded else f"{label} (given again)"
        loaded[label] = part if isinstance(part, WsiStats) else read_stats(part)
    problems = _problems(loaded)
    stats = None if problems else concat(list(loaded.values()))
    cohort = next(iter(loaded.values())).meta.get("cohort") or {}
    if stats is not None and (
        stats.n_wsi != cohort.get("n_wsi") or cohort_key(stats.sample_ids) != cohort.get("key")
    ):
        problems.append(f"the parts hold {stats.n_wsi} WSIs of a cohort of {cohort.get('n_wsi')}")
    if problems:
        raise InputError(
            "these folders are not the shards of one run:\n  - " + "\n  - ".join(problems),
            "score every shard with the same command line and --shard K/N for K = 1..N",
        )
    logger.info("merging %d shards: %d WSIs", len(loaded), stats.n_wsi)
    run_info = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "merged_from": [Path(p).name for p in paths],
        "elapsed_s": round(time.perf_counter() - t0, 3),
    }
    result = evaluate(stats, run_info=run_info)
    if out is not None:
        result.write(out, overwrite=overwrite, inputs=paths)
    return result
