"""Pixel features of H&E patches (the foundation-model stand-in): no torch needed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gpc_bench import InputError
from gpc_bench.baselines.histoprism.data import read_embeddings
from gpc_bench.baselines.histoprism.featurize import (
    apply_pca,
    featurize,
    featurize_manifest,
    load_pca,
    patch_features,
    read_spots,
)


def _slide(seed: int, size=(300, 260)) -> tuple[np.ndarray, pd.DataFrame]:
    """A white image with coloured noisy blobs at a 4 x 3 grid of spots; spot table in ST style."""
    rng = np.random.default_rng(seed)
    img = np.full((*size[::-1], 3), 255, np.uint8)
    rows = []
    for i in range(4):
        for j in range(3):
            x, y = 40 + 70 * i, 40 + 80 * j
            colour = rng.integers(60, 220, 3)
            img[y - 20 : y + 20, x - 20 : x + 20] = np.clip(colour + rng.normal(0, 15, (40, 40, 3)), 0, 255)
            rows.append({"x": i + 1, "y": j + 1, "pixel_x": x + 0.4, "pixel_y": y - 0.3, "selected": 1})
    rows[-1]["selected"] = 0
    return img, pd.DataFrame(rows)


def test_patch_features_match_an_independent_computation():
    img, spots = _slide(0)
    xy = spots[["pixel_x", "pixel_y"]].to_numpy()
    f = patch_features(img, xy, patch_size=32, grid=4)
    assert f.shape == (12, 3 * 16 + 20)
    for k, (x, y) in enumerate(np.rint(xy).astype(int)):
        patch = img[y - 16 : y + 16, x - 16 : x + 16]
        small = [
            patch[8 * a : 8 * a + 8, 8 * b : 8 * b + 8].mean((0, 1)) / 255 for a in range(4) for b in range(4)
        ]
        np.testing.assert_allclose(f[k, :48], np.ravel(small), rtol=1e-5)
        np.testing.assert_allclose(f[k, 48:51], patch.reshape(-1, 3).mean(0) / 255, rtol=1e-5)
        np.testing.assert_allclose(f[k, 51:54], (patch.reshape(-1, 3) / 255).std(0), rtol=1e-4)
    # a patch over the edge is padded with white background
    edge = patch_features(img, np.array([[2.0, 2.0]]), patch_size=32, grid=4)
    assert edge[0, 0] == pytest.approx(1.0)  # top-left block is all padding
    with pytest.raises(InputError, match="outside the image"):
        patch_features(img, np.array([[5000.0, 10.0]]), patch_size=32, grid=4)
    with pytest.raises(InputError, match="multiple of the grid"):
        patch_features(img, xy, patch_size=30, grid=4)


def test_read_spots_builds_st_barcodes_and_drops_unselected(tmp_path):
    _, spots = _slide(0)
    spots.to_csv(tmp_path / "s.tsv", sep="\t", index=False)
    barcodes, xy = read_spots(tmp_path / "s.tsv")
    assert len(barcodes) == 11 and barcodes[0] == "1x1" and barcodes[4] == "2x2"
    spots.drop(columns=["pixel_x"]).to_csv(tmp_path / "bad.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="pixel_x and pixel_y"):
        read_spots(tmp_path / "bad.tsv")


def test_manifest_fits_pca_on_train_only(tmp_path):
    rows = []
    for k, split in enumerate(["train", "train", "test"]):
        img, spots = _slide(k)
        Image.fromarray(img).save(tmp_path / f"s{k}.png")
        spots.to_csv(tmp_path / f"s{k}.tsv", sep="\t", index=False)
        rows.append({"sample_id": f"S{k}", "image": f"s{k}.png", "spots": f"s{k}.tsv", "split": split})
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    info = featurize_manifest(
        tmp_path / "manifest.csv", tmp_path / "emb", n_components=5, patch_size=32, grid=4
    )
    assert info == {"n_wsi": 3, "n_components": 5}
    pca = load_pca(tmp_path / "emb" / "pca.npz")
    raw = {}
    for k in range(3):
        img, spots = _slide(k)
        spots = spots[spots["selected"] == 1]
        raw[k] = patch_features(img, spots[["pixel_x", "pixel_y"]].to_numpy(), 32, 4)
    train = np.concatenate([raw[0], raw[1]]).astype(np.float64)
    np.testing.assert_allclose(pca["mean"], train.mean(0), rtol=1e-6, atol=1e-9)  # fitted on train rows only
    barcodes, emb, coords = read_embeddings(tmp_path / "emb" / "S2.h5")
    assert emb.shape == (11, 5) and barcodes[0] == "1x1" and coords.shape == (11, 2)
    np.testing.assert_allclose(emb, apply_pca(raw[2], pca), rtol=1e-5, atol=1e-5)
    # the single-WSI form with the fitted PCA writes the same embeddings
    n = featurize(tmp_path / "s2.png", tmp_path / "s2.tsv", tmp_path / "one.h5", pca, patch_size=32, grid=4)
    assert n == 11 and np.array_equal(read_embeddings(tmp_path / "one.h5")[1], emb)
