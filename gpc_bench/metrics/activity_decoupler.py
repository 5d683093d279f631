"""Pathway activity per spot through decoupler (``--activity ulm`` or ``--activity aucell``).

decoupler (scverse's pathway-activity library, the ``activity`` extra) scores each spot from all
of the WSI's scored genes at once: ``ulm`` is the t-value of a one-covariate linear model of the
spot's expression on pathway membership (genes outside the pathway are the background), ``aucell``
the area under the recovery curve of the pathway's genes among the spot's top 5% genes. Both run
on the same matrix layout for measured and predicted expression: the WSI's spots x the scored
panel, every spot and gene kept (``empty=False``: a gene silent in the WSI stays in the
background, so that the two sides share one background), pathways of any size (``tmin=1``; the
run's ``min_genes`` still decides which pathways are scored). PAC is then computed from these maps
exactly as from mean-z ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from .activity import ActivityPlan

METHODS = ("ulm", "aucell")


def _decoupler():
    try:
        import decoupler
    except ImportError:
        raise InputError(
            "--activity ulm/aucell needs decoupler, which is not installed",
            "pip install 'gpc-bench[activity]' (decoupler), or use --activity mean-z",
        ) from None
    return decoupler


def network(plan: ActivityPlan) -> pd.DataFrame:
    """decoupler's long net (``source``, ``target``, ``weight``) of an
    :class:`~gpc_bench.metrics.activity.ActivityPlan`: features named ``g<panel index>``, sources
    ``p<pathway index>``. Fails with a clear error where decoupler is not installed, so that a run
    builds it once, before any spot is read."""
    import pandas as pd

    _decoupler()
    coo = plan.weights.tocoo()
    net = pd.DataFrame(
        {
            "source": [f"p{p}" for p in coo.col],
            "target": [f"g{g}" for g in plan.cols[coo.row]],
            "weight": 1.0,
        }
    )
    return net


def decoupler_activity(
    method: str, x: np.ndarray, plan: ActivityPlan, net: pd.DataFrame | None = None
) -> np.ndarray:
    """``(n_sets, spots)`` activities of ``x`` (a WSI's spots x scored genes) by decoupler's
    ``method``, with ``net`` the plan's :func:`network` (built here when ``None``); NaN for a
    pathway decoupler leaves out."""
    if method not in METHODS:
        raise InputError(f"decoupler activity method must be one of {METHODS}, not {method!r}")
    dc = _decoupler()
    net = network(plan) if net is None else net
    n_spots, n_genes = x.shape
    spots = np.array([f"s{i}" for i in range(n_spots)])
    genes = np.array([f"g{j}" for j in range(n_genes)])
    run = getattr(dc.mt, method)
    res = run([np.asarray(x, dtype=np.float32), spots, genes], net, tmin=1, empty=False, verbose=False)
    scores = res[0] if isinstance(res, tuple) else res
    scores = scores.reindex(index=spots, columns=[f"p{p}" for p in range(plan.n_sets)])
    return scores.to_numpy(dtype=np.float64).T.copy()
