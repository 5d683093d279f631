"""The units a pooled protocol computes r over: HEST-Benchmark's test splits, or STPath's cancer types.

Under ``--protocol default`` (and ``published``) each WSI is a unit: r is computed over its spots.
The pooled protocols compute one r per gene over all spots of a group of WSIs, merged exactly from
the per-WSI co-moments (:func:`gpc_bench.metrics.pooled_pcc`):

- ``hest-pooled``: each test split of HEST-Benchmark (``benchmark.py``: one ``pearsonr`` per gene
  over the split's concatenated spots, ``np.mean`` over genes, then the mean over splits). The
  splits come from ``--splits CSV`` (``sample_id,split``); without it each WSI is its own split, as
  in most HEST-Benchmark datasets.
- ``stpath-pooled``: all WSIs of a cancer type at once (STPath's ``"all"`` entry of
  ``gene_exp_prediction/metric.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ._errors import InputError, examples

POOLED = ("hest-pooled", "stpath-pooled")


def read_splits(path: str | Path) -> dict[str, str]:
    """``sample_id -> split`` from a CSV with columns ``sample_id,split``."""
    import csv

    path = Path(path)
    hint = "give a CSV with a header sample_id,split and one row per WSI"
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"--splits {path} cannot be read: {err}", hint) from None
    if not rows or not {"sample_id", "split"} <= set(rows[0]):
        cols = sorted(rows[0]) if rows else []
        raise InputError(f"--splits {path} needs columns sample_id and split, has {cols}", hint)
    out: dict[str, str] = {}
    for i, row in enumerate(rows, start=2):
        sid, split = (row["sample_id"] or "").strip(), (row["split"] or "").strip()
        if not sid or not split:
            raise InputError(f"--splits {path} line {i}: empty sample_id or split", hint)
        if out.get(sid, split) != split:
            raise InputError(f"--splits {path}: WSI {sid!r} is in splits {out[sid]!r} and {split!r}", hint)
        out[sid] = split
    return out


def unit_groups(
    sample_ids: Sequence[str], cancer_types: Sequence[str], protocol: str, splits: str | Path | None
) -> list[str] | None:
    """The pooled group of each WSI under ``protocol`` (``None``: one unit per WSI).

    Under ``hest-pooled`` every WSI of the cohort must be in ``splits`` (when given), and a split
    must hold WSIs of one cancer type: HEST-Benchmark's splits are within one dataset.
    """
    if protocol == "stpath-pooled":
        return [str(t) for t in cancer_types]
    if protocol != "hest-pooled":
        return None
    if splits is None:
        return [str(s) for s in sample_ids]
    assignment = read_splits(splits)
    absent = [s for s in sample_ids if s not in assignment]
    if absent:
        raise InputError(
            f"--splits {splits} assigns no split to {len(absent)} WSI(s), e.g. {examples(absent)}",
            "list every scored WSI with its split (sample_id,split)",
        )
    groups = [assignment[s] for s in sample_ids]
    types: dict[str, set] = {}
    for g, t in zip(groups, cancer_types, strict=True):
        types.setdefault(g, set()).add(str(t))
    mixed = {g: sorted(t) for g, t in types.items() if len(t) > 1}
    if mixed:
        raise InputError(
            f"--splits {splits}: split(s) hold WSIs of several cancer types: {mixed}",
            "HEST-Benchmark splits lie within one dataset (cancer type); name splits per cancer type",
        )
    return groups


def unit_name(protocol: str, group: str) -> str:
    """The ``sample_id`` a pooled unit gets in the tables."""
    return f"split:{group}" if protocol == "hest-pooled" else f"pooled:{group}"
