"""Simple pixel features of H&E patches: a weak stand-in for a pathology foundation model.

For each spot a square patch is cut around its pixel coordinates; its features are the patch
downsampled to ``grid x grid`` RGB, colour statistics (per-channel mean, standard deviation and
10/50/90th percentiles, mean optical density, grey-level standard deviation, share of background
pixels), then optionally a PCA fitted on the training WSIs. This lets the pipeline run end to end on
real H&E without a foundation model; it is far weaker than UNI-class embeddings (docs/model.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gpc_bench._errors import InputError
from gpc_bench._progress import progress
from gpc_bench.io.runfolder import atomic_file

logger = logging.getLogger("gpc_bench.model")


def read_image(path: str | Path) -> np.ndarray:
    """An H&E image as ``H x W x 3`` uint8 (JPEG/PNG/TIFF; at most
    :data:`gpc_bench.io.image.MAX_PIXELS` pixels: larger files are refused as decompression bombs)."""
    from gpc_bench.io.image import open_image

    with open_image(path) as im:
        return np.asarray(im.convert("RGB"))


def read_spots(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Spot barcodes and pixel centres ``(x, y)`` from a TSV/CSV.

    Needs ``pixel_x`` and ``pixel_y``; barcodes come from ``barcode`` or are built as ``"{x}x{y}"``
    from the array columns ``x`` and ``y`` (legacy ST). Rows with ``selected == 0`` are dropped.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"spot table {path} not found")
    df = pd.read_csv(path, sep=None, engine="python")
    if "selected" in df:
        df = df[df["selected"].astype(int) != 0]
    if not {"pixel_x", "pixel_y"} <= set(df.columns):
        raise InputError(f"spot table {path} needs pixel_x and pixel_y columns (has {list(df.columns)})")
    if "barcode" in df:
        barcodes = df["barcode"].astype(str).to_numpy()
    elif {"x", "y"} <= set(df.columns):
        barcodes = np.array([f"{int(x)}x{int(y)}" for x, y in zip(df["x"], df["y"], strict=True)])
    else:
        raise InputError(f"spot table {path} needs a barcode column, or array columns x and y")
    xy = df[["pixel_x", "pixel_y"]].to_numpy(np.float64)
    if not np.isfinite(xy).all():
        raise InputError(f"spot table {path} has missing pixel coordinates")
    return barcodes, xy


def patch_features(
    image: np.ndarray, centres: np.ndarray, patch_size: int = 224, grid: int = 8
) -> np.ndarray:
    """Raw features of the patches around ``centres`` (``N x 2`` pixel x, y): ``N x (3 grid^2 + 20)``.

    Patches reaching past the image edge are padded with white (background).
    """
    if patch_size < grid or patch_size % grid:
        raise InputError(f"patch size {patch_size} must be a positive multiple of the grid {grid}")
    h = patch_size // 2
    padded = np.pad(image, ((patch_size, patch_size), (patch_size, patch_size), (0, 0)), constant_values=255)
    out = np.empty((len(centres), 3 * grid * grid + 20), np.float32)
    b = patch_size // grid
    for i, (x, y) in enumerate(np.rint(centres).astype(np.int64)):
        r0, c0 = y - h + patch_size, x - h + patch_size
        if not (0 <= r0 <= padded.shape[0] - patch_size and 0 <= c0 <= padded.shape[1] - patch_size):
            raise InputError(
                f"spot {i} at pixel ({x}, {y}) is outside the image {image.shape[1]} x {image.shape[0]}"
            )
        p = padded[r0 : r0 + patch_size, c0 : c0 + patch_size].astype(np.float32) / 255.0
        small = p.reshape(grid, b, grid, b, 3).mean((1, 3))
        px = p.reshape(-1, 3)
        q = np.percentile(px[::4], [10, 50, 90], axis=0)  # a quarter of the pixels: same quantiles, 4x faster
        od = -np.log(np.clip(px, 1 / 255, 1))
        grey = px.mean(1)
        out[i] = np.concatenate(
            [small.ravel(), px.mean(0), px.std(0), q.ravel(), od.mean(0), [grey.std(), (grey > 0.85).mean()]]
        )
    return out


def fit_pca(features: list[np.ndarray], n_components: int = 64) -> dict:
    """Standardise and fit a PCA on the training WSIs' features (scikit-learn); plain arrays out."""
    from sklearn.decomposition import PCA

    x = np.concatenate(features).astype(np.float64)
    mean, scale = x.mean(0), x.std(0)
    scale[scale == 0] = 1.0
    k = min(n_components, x.shape[0], x.shape[1])
    pca = PCA(n_components=k, svd_solver="full", random_state=0).fit((x - mean) / scale)
    return {
        "mean": mean,
        "scale": scale,
        "components": pca.components_,
        "pca_mean": pca.mean_,
        "explained_variance_ratio": pca.explained_variance_ratio_,
    }


def apply_pca(x: np.ndarray, pca: dict) -> np.ndarray:
    """Project raw features with a fitted PCA."""
    return (((x - pca["mean"]) / pca["scale"] - pca["pca_mean"]) @ pca["components"].T).astype(np.float32)


def save_pca(path: str | Path, pca: dict) -> None:
    """Write a fitted PCA as ``.npz`` (plain arrays; read back with ``allow_pickle=False``)."""
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **pca)


def load_pca(path: str | Path) -> dict:
    """Read a PCA written by :func:`save_pca`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"PCA file {path} not found")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def write_embeddings(
    path: str | Path, barcodes: Sequence[str], embeddings: np.ndarray, coords: np.ndarray
) -> None:
    """Write HEST-style embeddings (``embeddings``, ``barcodes`` as bytes, ``coords``), atomically."""
    import h5py

    with atomic_file(path) as tmp, h5py.File(tmp, "w") as f:
        f["embeddings"] = embeddings.astype(np.float32)
        f["barcodes"] = np.asarray([str(b).encode() for b in barcodes])
        f["coords"] = np.asarray(coords, np.float32)


def featurize(
    image: str | Path,
    spots: str | Path,
    out: str | Path,
    pca: dict | None = None,
    patch_size: int = 224,
    grid: int = 8,
) -> int:
    """Featurize one WSI and write its embeddings ``.h5``; returns the number of spots."""
    barcodes, xy = read_spots(spots)
    feats = patch_features(read_image(image), xy, patch_size, grid)
    write_embeddings(out, barcodes, apply_pca(feats, pca) if pca is not None else feats, xy)
    return len(barcodes)


def check_sample_id(sid: object, where: str) -> None:
    """A sample id becomes a file name (``<sample_id>.h5``): letters, digits, ``.``, ``_``, ``-``
    only, so that no id can name a path outside the output folder (``../x``, ``/etc/x``)."""
    import re

    if not isinstance(sid, str) or not re.fullmatch(r"[A-Za-z0-9._-]+", sid) or set(sid) == {"."}:
        raise InputError(
            f"{where}: sample_id {sid!r} cannot be a file name",
            "use letters, digits, '.', '_' and '-' only (no '/', '..' or absolute paths)",
        )


def featurize_manifest(
    manifest: str | Path,
    out_dir: str | Path,
    n_components: int = 64,
    patch_size: int = 224,
    grid: int = 8,
) -> dict:
    """Featurize every WSI of a manifest CSV (``sample_id``, ``image``, ``spots``, ``split``).

    The PCA is fitted on the ``train`` rows only and written as ``pca.npz`` next to the
    ``<sample_id>.h5`` files. Relative paths are read against the manifest's folder.
    """
    import pandas as pd

    manifest = Path(manifest)
    if not manifest.is_file():
        raise InputError(f"manifest {manifest} not found")
    df = pd.read_csv(manifest, dtype=str)
    missing = {"sample_id", "image", "spots", "split"} - set(df.columns)
    if missing:
        raise InputError(f"manifest {manifest} lacks column(s) {sorted(missing)}")
    if not (df["split"] == "train").any():
        raise InputError(f"manifest {manifest} has no train row to fit the PCA on")
    for sid in df["sample_id"]:
        check_sample_id(sid, manifest)
    dup = df["sample_id"][df["sample_id"].duplicated()].tolist()
    if dup:
        raise InputError(f"manifest {manifest} repeats sample_id(s) {dup[:5]}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = manifest.parent
    raw = {}
    for row in progress(df.itertuples(), len(df), "WSIs featurized", logger):
        barcodes, xy = read_spots(base / row.spots)
        raw[row.sample_id] = (
            barcodes,
            xy,
            patch_features(read_image(base / row.image), xy, patch_size, grid),
        )
        logger.info("featurized %s: %d spots", row.sample_id, len(barcodes))
    pca = fit_pca([raw[s][2] for s in df.loc[df["split"] == "train", "sample_id"]], n_components)
    save_pca(out_dir / "pca.npz", pca)
    for sid, (barcodes, xy, feats) in raw.items():
        write_embeddings(out_dir / f"{sid}.h5", barcodes, apply_pca(feats, pca), xy)
    return {"n_wsi": len(raw), "n_components": int(pca["components"].shape[0])}
