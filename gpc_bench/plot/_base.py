"""Shared plotting helpers: figure/axes handling, the level colour map, and atomic saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._errors import InputError
from ..io.runfolder import atomic_file

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def new_axes(ax=None, n: int = 1, width: float = 4.2, height: float = 4.0):
    """``(fig, [axes])``: the given axes (one or a sequence), or a new figure with ``n`` panels."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False, layout="constrained")
        return fig, list(axes[0])
    axes = list(np.atleast_1d(ax))
    if len(axes) != n:
        raise InputError(f"this plot needs {n} axes, got {len(axes)}")
    return axes[0].figure, axes


def level_cmap(n_levels: int = 10):
    """Discrete colours for variance levels 1..n_levels and the matching norm."""
    import matplotlib as mpl

    cmap = mpl.colormaps["viridis"].resampled(n_levels)
    norm = mpl.colors.BoundaryNorm(np.arange(0.5, n_levels + 1.5), n_levels)
    return cmap, norm


def save(fig, out: str | Path, dpi: int = 150, overwrite: bool = False, inputs=()) -> Path:
    """Save by extension (PNG, SVG with editable text, PDF), atomically, signed as gpc-bench's (an
    existing file is replaced only with ``overwrite``, and only when gpc-bench wrote it)."""
    import matplotlib as mpl

    from .._version import __version__

    out = Path(out)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise InputError(f"cannot tell the figure format of {out.name}", "use .png, .svg or .pdf")
    sign = f"gpc-bench {__version__} (matplotlib {mpl.__version__})"
    meta = {"png": {"Software": sign}, "svg": {"Creator": sign, "Date": None},
            "pdf": {"Creator": sign, "CreationDate": None}}[fmt]  # fmt: skip
    target = atomic_file(out, check=True, kind="figure", overwrite=overwrite, inputs=inputs)
    with mpl.rc_context({"svg.fonttype": "none", "pdf.fonttype": 42}), target as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, metadata=meta)
    return out
