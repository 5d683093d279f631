"""Chan's parallel formula for co-moments: the WSIs of a group pooled over all their spots."""

from __future__ import annotations

import numpy as np


def deviations(w: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Each WSI's mean minus the group's spot-weighted mean (``w``: ``(k, 1)`` spot counts)."""
    return means - (w * means).sum(0) / w.sum()


def pooled(comoment: np.ndarray, w: np.ndarray, dev_a: np.ndarray, dev_b: np.ndarray) -> np.ndarray:
    """The group's co-moment of a and b: the WSIs' co-moments plus the between-WSI term."""
    return comoment.sum(0) + (w * dev_a * dev_b).sum(0)
