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


def level_panel(axis, x, y, lv, coll: str, note: str, n_levels: int, fontsize: float = 8.5):
    """One collection's panel of a pathway scatter: points coloured by variance level (gid
    ``points-<coll>``), the diagonal, equal square limits including 0, the note above the panel
    (gid ``annotation-<coll>``; under the title, never on a point) and the title. Returns the points."""
    cmap, norm = level_cmap(n_levels)
    points = axis.scatter(x, y, c=lv, cmap=cmap, norm=norm, s=18, edgecolors="none", alpha=0.9)
    points.set_gid(f"points-{coll}")
    lo = float(np.nanmin(np.concatenate([x, y, [0.0]]))) - 0.02
    hi = float(np.nanmax(np.concatenate([x, y, [0.0]]))) + 0.02
    axis.plot([lo, hi], [lo, hi], color="0.4", lw=0.8, ls="--", zorder=0)
    axis.set_xlim(lo, hi)
    axis.set_ylim(lo, hi)
    axis.set_aspect("equal")
    t = axis.text(0.5, 1.01, note, transform=axis.transAxes, va="bottom", ha="center", fontsize=fontsize)
    t.set_gid(f"annotation-{coll}")
    axis.set_title({"hallmark": "Hallmark", "go": "GO"}.get(coll, coll), pad=16)
    return points, t


def level_colorbar(fig, points, axes, n_levels: int) -> None:
    """The variance-level colour bar of a pathway scatter (gid ``colorbar``)."""
    cb = fig.colorbar(points, ax=axes, ticks=range(1, n_levels + 1), shrink=0.8)
    cb.set_label("variance level")
    cb.ax.set_gid("colorbar")


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
