"""Adapters: turn the prediction files other models' own code writes into gpc-bench's format.

One module per format; each returns a :class:`~gpc_bench.baselines.adapters._common.Converted`
(the prediction AnnData and a conversion report). ``gpc-bench convert --from FORMAT`` writes them.
Formats: ``stpath-h5ad`` (pred_<id>.h5ad), ``stpath-results`` (results.pth), ``histoprism``
(predicted_genes.csv), ``stem`` (generated_samples_*.pt), ``stflow`` (preds_all/targets_all).
See docs/adapters.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._common import Converted

FORMATS = ("stpath-h5ad", "stpath-results", "histoprism", "stem", "stflow")


def convert(
    fmt: str,
    source: str | Path | Sequence[str | Path],
    *,
    embeddings: str | Path | None = None,
    truth: str | Path | None = None,
    slide: str | Path | Sequence[str | Path] | None = None,
    genes: str | Path | None = None,
    n_draws: int | None = None,
    sample_id: str | None = None,
    samples: str | Path | None = None,
    pattern: str = "pred_{sample_id}.h5ad",
) -> Converted:
    """Convert ``source`` written in format ``fmt``; see :data:`FORMATS` and docs/adapters.md.

    ``truth`` may be a path or an AnnData (read backed); it gives barcodes to formats without them.
    """
    from gpc_bench._errors import InputError
    from gpc_bench.io.h5ad import read_anndata

    from . import formats

    def need(**kw):
        missing = [f"--{k.replace('_', '-')}" for k, v in kw.items() if v is None]
        if missing:
            raise InputError(f"--from {fmt} needs {', '.join(missing)}")

    if isinstance(slide, list | tuple):  # the CLI's repeated --slide
        slide = None if not slide else (slide[0] if len(slide) == 1 else list(slide))
    if isinstance(truth, str | bytes) or hasattr(truth, "is_file"):
        truth = read_anndata(truth, backed="r")
    if fmt in ("histoprism", "stpath-h5ad"):
        conv = (
            formats.histoprism(source, embeddings=embeddings, truth=truth)
            if fmt == "histoprism"
            else formats.stpath_h5ad(source, pattern=pattern, embeddings=embeddings, truth=truth)
        )
        return _checked_order(conv, truth, embeddings)
    if fmt == "stpath-results":
        return formats.stpath_results(source, embeddings=embeddings)
    if fmt == "stem":
        need(slide=slide, genes=genes, n_draws=n_draws)
        return formats.stem(source, slide=slide, genes=genes, n_draws=n_draws, sample_id=sample_id)
    if fmt == "stflow":
        need(samples=samples, genes=genes)
        return formats.stflow(source, samples=samples, genes=genes, embeddings=embeddings)
    raise InputError(f"unknown format {fmt!r}", f"one of {FORMATS}")


def _checked_order(conv, truth, embeddings):
    """Record whether the spot order was verified; where it was assumed (barcodes from the truth in
    file order), run :func:`~gpc_bench.baselines.adapters._common.order_check` and warn."""
    import logging

    from ._common import order_check

    conv.report["spot_order_verified"] = embeddings is not None
    if embeddings is None and truth is not None:
        conv.report["order_check"] = check = order_check(conv.adata, truth)
        if "warning" in check:
            logging.getLogger(__name__).warning("%s", check["warning"])
            conv.report.setdefault("warnings", []).append(check["warning"])
    return conv
