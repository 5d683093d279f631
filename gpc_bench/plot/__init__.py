"""Figures: each function takes ``ax=`` and returns the matplotlib Figure; :func:`save` writes it."""

from ._base import save
from .levels import levels, variance
from .pac import gpc_vs_pac
from .scatter import scatter
from .spatial import pathway_activity, spatial
from .table import leaderboard_table

__all__ = [
    "gpc_vs_pac",
    "leaderboard_table",
    "levels",
    "pathway_activity",
    "save",
    "scatter",
    "spatial",
    "variance",
]
