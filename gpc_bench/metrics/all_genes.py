"""PCC over the whole panel: each WSI's mean r over every gene with a defined r.

The number most papers report next to the top-50 HVG PCC; it shows how much of the panel a model
recovers, where the HVG PCC looks at 50 genes. Declared as :data:`PCC_ALL_GENES` (a
:class:`~gpc_bench.metrics._declare.WsiMetric`) and listed in :mod:`gpc_bench.metrics.registry`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._declare import WsiMetric

if TYPE_CHECKING:
    from ..config import ScoreConfig
    from ..stats import WsiStats


def mean_gene_pcc(stats: WsiStats, config: ScoreConfig | None = None) -> np.ndarray:
    """Per WSI, the mean r over its genes with a defined r (NaN when none is defined)."""
    r = np.asarray(stats.r, dtype=np.float64)
    ok = np.isfinite(r)
    n = ok.sum(axis=1)
    out = np.full(r.shape[0], np.nan)
    np.divide(np.where(ok, r, 0.0).sum(axis=1), n, out=out, where=n > 0)
    return out


PCC_ALL_GENES = WsiMetric("pcc_all_genes", "PCC\nall genes", needs="r", compute=mean_gene_pcc)
