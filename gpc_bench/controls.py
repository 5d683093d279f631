"""``gpc-bench controls``: control predictions written in the prediction format, to score like a model.

* ``shuffle``: each WSI's measured spots in a random order (negative control: GPC about 0).
* ``type-mean``: every spot gets its cancer type's mean measured profile (negative control: the
  prediction is constant within a WSI, so r = 0 under ``--constant-prediction zero``; it still
  separates cancer types perfectly, which shows what clustering agreement does not measure).
* ``noise-snr<S>``: measured expression plus Gaussian noise whose variance is the gene's
  within-WSI variance divided by S (a calibration ladder: expected r = sqrt(S / (1 + S))).
* ``depth``: every gene of a spot predicted as the spot's depth covariate, chosen as ``score``
  chooses it (:func:`gpc_bench.metrics.depth.depth_source`): a model that knows nothing about any
  gene. Its raw r is the depth baseline r_xd and its depth-adjusted r is 0 (docs/metrics.md).

Files are streamed one WSI at a time with h5py: ``obs``, ``var`` and ``obsm`` are copied from the
measured file, ``X`` is written as dense float32, and ``uns["gpc_bench_control"]`` names the
control so that ``score`` and the leaderboard mark it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._errors import InputError
from .io.runfolder import atomic_file

if TYPE_CHECKING:
    import anndata as ad

logger = logging.getLogger(__name__)

KINDS = ("shuffle", "type-mean", "noise", "depth")
_DICT = {"encoding-type": "dict", "encoding-version": "0.1.0"}


def expected_noise_pcc(snr: float) -> float:
    """Expected Pearson r between a signal and the signal plus noise at variance ratio ``snr``."""
    return float(np.sqrt(snr / (1.0 + snr)))


def _groups(truth_path: Path):
    """Spot rows per WSI (sorted) and the cancer type of each WSI, read from ``obs``."""
    from .io.align import obs_labels, sample_ids
    from .io.h5ad import H5adSource

    src = H5adSource(truth_path, "truth")
    sid = sample_ids(src).astype(str)
    types = obs_labels(src, "cancer_type")
    types = np.full(len(sid), "unknown", dtype=object) if types is None else types.astype(str)
    groups = {}
    for s in sorted(set(sid.tolist())):
        rows = np.flatnonzero(sid == s)
        groups[s] = (rows, str(types[rows[0]]))
    return src, groups


def _type_means(src, groups, layer) -> dict[str, np.ndarray]:
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for rows, ctype in groups.values():
        x = src.read_rows(rows, layer).astype(np.float64)
        sums[ctype] = sums.get(ctype, 0.0) + x.sum(axis=0)
        counts[ctype] = counts.get(ctype, 0) + len(rows)
    return {c: (sums[c] / counts[c]).astype(np.float32) for c in sums}


def _row_chunks(n_obs: int, n_vars: int, target_bytes: int = 1 << 20) -> tuple[int, int]:
    """Whole-row chunks of about ``target_bytes``: no padding of the gene axis (a (64, 4096) chunk
    pads 12,997 genes to 16,384), and rows read as the scorer reads them."""
    return (max(1, min(n_obs, target_bytes // (4 * max(n_vars, 1)))), max(n_vars, 1))


def _write_one(truth_path: Path, out: Path, kind: str, src, groups, layer, make_block) -> Path:
    import h5py

    with (
        atomic_file(out, check=True, kind="control", overwrite=True, inputs=[truth_path]) as tmp,
        h5py.File(truth_path, "r") as f,
        h5py.File(tmp, "w") as g,
    ):
        g.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
        for key in ("obs", "var", "obsm"):
            if key in f:
                f.copy(f[key], g, key)
            else:
                g.create_group(key).attrs.update(_DICT)
        for key in ("layers", "obsp", "varm", "varp", "uns"):
            g.create_group(key).attrs.update(_DICT)
        tag = g["uns"].create_dataset("gpc_bench_control", data=kind, dtype=h5py.string_dtype())
        tag.attrs.update({"encoding-type": "string", "encoding-version": "0.2.0"})
        x = g.create_dataset(
            "X", shape=(src.n_obs, src.n_vars), dtype="f4", chunks=_row_chunks(src.n_obs, src.n_vars)
        )
        x.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
        for k, (sample, (rows, ctype)) in enumerate(groups.items()):
            block = src.read_rows(rows, layer)
            x[rows, :] = make_block(block, ctype, k, sample)
    return out


def _depth_control(src, groups, depth_key):
    """``make_block`` of the depth-only prediction: the spot's depth covariate in every gene."""
    from .metrics.depth import depth_source, genes_detected

    info, values = depth_source(src.obs_column, depth_key)
    logger.info("depth control from %s", info)

    def depth(block, ctype, k, sample):
        d = np.log1p(genes_detected(block)) if values is None else values[groups[sample][0]]
        return np.broadcast_to(d.astype(np.float32)[:, None], block.shape)

    return depth


def write_controls(
    truth: str | Path | ad.AnnData,
    out: str | Path,
    *,
    kinds: Sequence[str] = KINDS,
    snr: Sequence[float] = (0.25, 1.0, 4.0),
    seed: int = 0,
    layer: str | None = None,
    overwrite: bool = False,
    depth_key: str | None = None,
) -> list[Path]:
    """Write control predictions for a measured ``.h5ad``.

    Parameters
    ----------
    truth
        Measured expression (log1p) ``.h5ad``; ``layer`` reads ``layers[layer]`` instead of ``X``.
    out
        Folder; files are ``control-shuffle.h5ad``, ``control-type-mean.h5ad`` and
        ``control-noise-snr<S>.h5ad``.
    kinds
        Any of ``shuffle``, ``type-mean``, ``noise``.
    snr
        Signal-to-noise variance ratios of the noise ladder.
    seed
        Seed; each (kind, WSI) draws from its own stream.
    depth_key
        For ``depth``: the obs column to use as given (as ``score --depth-key``).

    Returns
    -------
    The written paths.
    """
    truth_path = Path(truth)
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise InputError(f"unknown control kinds {sorted(unknown)}", f"choose from {list(KINDS)}")
    if "noise" in kinds and (not snr or any(s <= 0 for s in snr)):
        raise InputError(f"--snr must be positive numbers, got {list(snr)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    src, groups = _groups(truth_path)
    if layer is not None and not src.has_layer(layer):
        raise InputError(f"{truth_path} has no layers[{layer!r}]")
    src.check_matrix(layer)
    plan: list[tuple[str, object]] = []
    if "shuffle" in kinds:

        def shuffle(block, ctype, k, sample):
            rng = np.random.default_rng([seed, 1, k])
            return block[rng.permutation(len(block))]

        plan.append(("shuffle", shuffle))
    if "type-mean" in kinds:
        means = _type_means(src, groups, layer)

        def type_mean(block, ctype, k, sample):
            return np.broadcast_to(means[ctype], block.shape)

        plan.append(("type-mean", type_mean))
    if "noise" in kinds:
        for s in snr:

            def noisy(block, ctype, k, sample, s=s):
                rng = np.random.default_rng([seed, 2, k, int(round(s * 1e6))])
                sd = np.sqrt(block.astype(np.float64).var(axis=0) / s)
                return (block + rng.standard_normal(block.shape) * sd).astype(np.float32)

            plan.append((f"noise-snr{s:g}", noisy))
    if "depth" in kinds:
        plan.append(("depth", _depth_control(src, groups, depth_key)))
    from .io.runfolder import check_out

    for kind, _ in plan:  # every file checked before the first is written
        check_out(out / f"control-{kind}.h5ad", kind="control", overwrite=overwrite, inputs=[truth_path],
                  folder=False)  # fmt: skip
    paths = []
    for kind, fn in plan:
        path = out / f"control-{kind}.h5ad"
        logger.info("writing %s", path)
        paths.append(_write_one(truth_path, path, kind, src, groups, layer, fn))
    src.close()
    return paths
