"""Measured and predicted pathway activity on the tissue: the picture a pathologist asks for first."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._errors import InputError, examples, suggest
from ._base import new_axes

if TYPE_CHECKING:
    import anndata as ad
    import matplotlib.axes
    import matplotlib.figure


def _zscore(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd = x.mean(axis=0), x.std(axis=0)
    z = np.zeros_like(x)
    np.divide(x - mu, sd, out=z, where=sd > 0)
    return z, sd > 0


def pathway_activity(
    pred: np.ndarray, truth: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-spot activity (mean of z-scored genes) of measured and predicted expression.

    Genes constant in the measured WSI are left out (their r is undefined, as in GPC).

    Returns
    -------
    (measured activity, predicted activity, per-gene r, genes used mask)
    """
    zt, var_t = _zscore(truth.astype(np.float64))
    zp, var_p = _zscore(pred.astype(np.float64))
    use = var_t
    r = np.where(var_p[use], (zt[:, use] * zp[:, use]).mean(axis=0), 0.0)
    return zt[:, use].mean(axis=1), zp[:, use].mean(axis=1), r, use


def _section(predictions, truth, sample: str, symbols_wanted):
    from ..genes import detect_id_style, to_symbols
    from ..io.align import align_spots, sample_ids
    from ..io.h5ad import open_source

    pred = open_source(predictions, "predictions")
    sid = sample_ids(pred).astype(str)
    if not (sid == sample).any():
        raise InputError(
            f"no spots of sample {sample!r} in the predictions",
            suggest(sample, sorted(set(sid))) or f"samples: {examples(sorted(set(sid)))}",
        )
    xy = pred.obsm("spatial")
    if xy is None:
        raise InputError("the predictions have no obsm['spatial'] spot coordinates", "add pixel coordinates")
    ids = pred.var_names()
    sym = to_symbols(ids, detect_id_style(ids), pred.var_column("gene_symbol"))
    cols = [j for j, s in enumerate(sym) if s in symbols_wanted]
    if truth is None:
        if not pred.has_layer("truth"):
            raise InputError("no --truth given and the predictions have no layers['truth']")
        tsrc, t_cols, layer = pred, cols, "truth"
    else:
        tsrc, layer = open_source(truth, "truth"), None
    # spots are matched by (sample_id, barcode), by the code score uses: barcodes repeat across WSIs
    wsi = next(w for w in align_spots(pred, tsrc, truth is None) if w.sample_id == sample)
    rows, t_rows = wsi.pred_rows, wsi.truth_rows
    if truth is not None:
        t_ids = tsrc.var_names()
        t_sym = to_symbols(t_ids, detect_id_style(t_ids), tsrc.var_column("gene_symbol"))
        t_pos = {s: j for j, s in reversed(list(enumerate(t_sym)))}
        cols = [j for j in cols if sym[j] in t_pos]
        t_cols = [t_pos[sym[j]] for j in cols]
    if not cols:
        raise InputError(
            "none of the pathway's genes is in both files", f"panel genes look like {examples(ids)}"
        )
    p = pred.read_rows(rows)[:, cols]
    t = tsrc.read_rows(t_rows, layer)[:, t_cols]  # read_rows keeps the given (spot) order
    return p, t, np.asarray(xy)[rows], [sym[j] for j in cols]


MAX_DISPLAY_SIDE = 2000


def _load_image(path, max_side: int = MAX_DISPLAY_SIDE):
    """An H&E image reduced for display, with its full-resolution size (spot coordinates index it).

    Whole-slide JPEGs are often > 90 Mpx: JPEG draft mode decodes them at a reduced scale
    directly, and the image is then shrunk to ``max_side`` pixels on its longest side.
    """
    from ..io.image import open_image

    with open_image(path) as im:
        size = im.size
        im.draft("RGB", (max_side, max_side))
        im = im.convert("RGB")
        im.thumbnail((max_side, max_side))
        pixels = np.asarray(im)
    return pixels, size


def _standardise(a: np.ndarray) -> np.ndarray:
    sd = float(np.std(a))
    return (a - float(np.mean(a))) / sd if sd > 0 else np.zeros_like(a)


def check_coordinates(xy: np.ndarray, size: tuple[int, int], image: str | Path) -> None:
    """Refuse spot coordinates that do not index the image: outside it, or packed into a corner
    (array coordinates drawn over a full-resolution scan)."""
    width, height = size
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    tol = 0.05 * np.array([width, height])
    where = f"spot coordinates span x {lo[0]:.0f}-{hi[0]:.0f}, y {lo[1]:.0f}-{hi[1]:.0f}"
    hint = (
        "obsm['spatial'] must hold pixel coordinates of this image: give the image they index (full "
        "resolution, not a thumbnail), or scale obsm['spatial'] by the image's scale factor"
    )
    if np.any(lo < -tol) or hi[0] > width + tol[0] or hi[1] > height + tol[1]:
        raise InputError(f"{where}, outside the {width} x {height} image {image}", hint)
    if len(xy) > 1 and (hi - lo)[0] < 0.05 * width and (hi - lo)[1] < 0.05 * height:
        raise InputError(f"{where}: under 5% of the {width} x {height} image {image} in each direction", hint)


def spatial(
    predictions: str | Path | ad.AnnData,
    truth: str | Path | ad.AnnData | None = None,
    *,
    sample: str,
    pathway: str,
    pathways: Sequence[str | Path] | None = None,
    image: str | Path | None = None,
    spot_size: float = 30.0,
    name: str | None = None,
    ax: Sequence[matplotlib.axes.Axes] | None = None,
) -> matplotlib.figure.Figure:
    """Measured (left) and predicted (right) pathway activity of one WSI on its spots.

    Parameters
    ----------
    predictions, truth
        ``.h5ad`` paths or AnnData (``truth=None``: ``layers['truth']`` of the predictions).
    sample, pathway
        The WSI (``obs['sample_id']``) and the pathway name.
    pathways
        Where to find the pathway (default: the shipped collection).
    image
        An H&E image whose pixels ``obsm['spatial']`` indexes; drawn under the spots.
    name
        Model name for the title (default: the predictions file stem).

    Returns
    -------
    matplotlib.figure.Figure
        Spots carry the gids ``spots-measured`` / ``spots-predicted``; the title gives the WSI's
        pathway PCC (the mean over the pathway's genes of r, as GPC scores a WSI), its PAC and the
        Moran's I of both maps (as ``score --activity --spatial`` computes them).
    """
    import matplotlib as mpl

    from ..io.gmt import load_pathways

    sets = [s for s in load_pathways(pathways).sets if s.name == pathway]
    if not sets:
        hint = suggest(pathway, [s.name for s in load_pathways(pathways).sets])
        raise InputError(f"no pathway named {pathway!r}", hint or "list them with gpc-bench pathways list")
    p, t, xy, genes = _section(predictions, truth, sample, set(sets[0].genes))
    act_t, act_p, r, used = pathway_activity(p, t)
    if not used.any():
        raise InputError(f"every gene of {pathway} is constant in the measured {sample}")
    span = np.ptp(xy, axis=0).astype(float) + 1e-9
    aspect = float(np.clip(span[1] / span[0], 0.4, 2.5))  # panel height follows the tissue's shape
    img = None if image is None else _load_image(image)
    if img is not None:
        check_coordinates(xy, img[1], image)
    fig, axes = new_axes(ax, 2, width=4.2, height=4.2 * aspect + 0.7)
    # each panel standardised within the WSI (SD units), so that neither washes the other out
    act_t, act_p = _standardise(act_t), _standardise(act_p)
    lim = float(np.nanpercentile(np.abs(np.concatenate([act_t, act_p])), 99)) or 1.0
    norm = mpl.colors.Normalize(-lim, lim)
    for axis, act, label in ((axes[0], act_t, "measured"), (axes[1], act_p, "predicted")):
        if img is not None:
            pixels, (width, height) = img
            axis.imshow(pixels, extent=(0, width, height, 0), zorder=0)
        sc = axis.scatter(
            xy[:, 0],
            xy[:, 1],
            c=act,
            cmap="RdBu_r",
            norm=norm,
            s=spot_size,
            edgecolors="none",
            alpha=0.85 if img is not None else 1.0,
            zorder=1,
        )
        sc.set_gid(f"spots-{label}")
        pad = 0.05 * float(np.ptp(xy, axis=0).max() or 1.0)
        axis.set_xlim(xy[:, 0].min() - pad, xy[:, 0].max() + pad)
        axis.set_ylim(xy[:, 1].max() + pad, xy[:, 1].min() - pad)  # image orientation: y down
        axis.set_aspect("equal")
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_title(label)
    cb = fig.colorbar(sc, ax=axes, shrink=0.8)
    cb.set_label("pathway activity, standardised within each panel (SD)")
    cb.ax.set_gid("colorbar")
    if name is None:
        name = Path(predictions).stem if isinstance(predictions, str | Path) else "model"
    pac, moran_t, moran_p = map_agreement(p, t, xy)
    fig.suptitle(
        f"{pathway} in {sample}: PCC {r.mean():.3f} ({int(used.sum())} genes), PAC {pac:.3f}, "
        f"Moran's I measured {moran_t:.3f} / predicted {moran_p:.3f}\nmodel: {name}",
        fontsize=10,
    )
    return fig


def map_agreement(pred: np.ndarray, truth: np.ndarray, xy: np.ndarray) -> tuple[float, float, float]:
    """PAC and the two activity maps' Moran's I of one WSI, as ``score --activity --spatial``
    computes them (mean-z over all the pathway's genes, a constant one contributing 0; the 6-NN
    graph of :func:`gpc_bench.metrics.spatial.knn_graph`)."""
    from ..metrics.spatial import knn_graph, morans_i

    a_t = _zscore(truth.astype(np.float64))[0].mean(axis=1)
    a_p = _zscore(pred.astype(np.float64))[0].mean(axis=1)
    ok = np.ptp(a_t) > 0 and np.ptp(a_p) > 0
    pac = float(np.corrcoef(a_t, a_p)[0, 1]) if ok else float("nan")
    graph = knn_graph(xy)
    moran = morans_i(np.column_stack([a_t, a_p]), graph)
    return pac, float(moran[0]), float(moran[1])
