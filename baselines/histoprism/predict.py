"""Predict with a trained (or imported) HistoPrism and write the ``.h5ad`` that ``gpc-bench score`` reads."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from gpc_bench._errors import InputError
from gpc_bench._progress import progress
from gpc_bench.io.runfolder import atomic_file

from .config import DataConfig, RunConfig
from .data import Cohort
from .model import HistoPrism, config_from_state_dict, load_published_state_dict
from .train import _tensors, load_checkpoint

logger = logging.getLogger("gpc_bench.model")


def _measured_only(x, genes, truths: list, log1p: bool, info: dict, split: str):
    """Predictions, genes and ``layers`` with the truth, on the panel genes measured in every WSI
    (what was left out is counted in ``info``)."""
    t = np.concatenate(truths)
    check_truth_scale(t, log1p)
    measured = ~np.isnan(t).any(0)
    info["genes_dropped_not_measured"] = int((~measured).sum())
    if not measured.any():
        raise InputError("no panel gene is measured in every predicted WSI", "predict with --no-truth")
    if not measured.all():
        logger.warning(
            "%d panel genes are not measured in every %s WSI: left out of the file",
            (~measured).sum(),
            split,
        )
    info["genes_not_measured"] = [str(g) for g in genes[~measured]]
    return x[:, measured], genes[measured], {"truth": t[:, measured]}


def _write(
    out: Path, x, genes, layers: dict, obs: list, coords: list, info: dict, *, overwrite: bool, inputs
):
    """The prediction ``.h5ad``, written atomically; returns the AnnData."""
    import anndata as ad
    import pandas as pd

    frame = pd.concat(obs)
    frame["sample_id"] = frame["sample_id"].astype("category")
    frame["cancer_type"] = frame["cancer_type"].astype("category")
    a = ad.AnnData(X=x, obs=frame, var=pd.DataFrame(index=pd.Index(genes.astype(str))), layers=layers)
    if all(c is not None for c in coords):
        a.obsm["spatial"] = np.concatenate(coords)
    a.uns["gpc_bench_model"] = {k: v for k, v in info.items()}
    with warnings.catch_warnings():  # barcodes repeat across WSIs by design: (sample_id, barcode) is the key
        warnings.filterwarnings("ignore", message="Observation names are not unique")
        with atomic_file(out, check=True, kind="predictions", overwrite=overwrite, inputs=inputs) as tmp:
            a.write_h5ad(tmp)
    return a


def predict(
    checkpoint: str | Path,
    out: str | Path,
    split: str = "test",
    data: DataConfig | None = None,
    with_truth: bool = True,
    overwrite: bool = False,
    device: str = "cpu",
    log1p: bool | None = None,
) -> dict:
    """Predict every WSI of ``split`` and write one prediction ``.h5ad``.

    ``X`` holds the predicted log1p expression (float32), ``obs`` the barcodes (``obs_names``),
    ``sample_id`` and ``cancer_type``, ``obsm["spatial"]`` the coordinates when the embeddings carry
    them. With expression available (and ``with_truth``), ``layers["truth"]`` holds the measured log1p
    expression; spots without expression and panel genes not measured in every predicted WSI are then
    left out (counted in ``uns["gpc_bench_model"]``).

    Parameters
    ----------
    checkpoint
        From ``gpc-bench model train`` or ``model import-published``.
    out
        The ``.h5ad`` to write.
    split
        Which WSIs of the metadata to predict.
    data
        Inputs; default: the data block recorded in the checkpoint.
    with_truth
        Write ``layers["truth"]`` when expression is available.
    overwrite
        Replace an existing ``out``.
    device
        Torch device.
    log1p
        Apply log1p to the expression written as truth (``None``: as the checkpoint's data block
        says; an imported checkpoint records ``log1p: true``, as the published loader applies it).
        Truth that looks like raw counts while log1p is off is refused.

    Returns
    -------
    dict
        What was written (counts), also stored in ``uns["gpc_bench_model"]``.
    """
    import pandas as pd

    from gpc_bench.io.checksum import sha256_file
    from gpc_bench.io.runfolder import check_out

    out = Path(out)
    inputs = [checkpoint, *(() if data is None else (data.metadata, data.embeddings, data.expression))]
    check_out(out, kind="predictions", overwrite=overwrite, inputs=inputs, folder=False)
    model, ckpt = load_checkpoint(checkpoint, device)
    if data is None:
        raw = dict(ckpt["run_config"]["data"])
        if isinstance(raw.get("cancer_types"), list):
            raw["cancer_types"] = tuple(raw["cancer_types"])
        data = DataConfig(**raw)
    if log1p is not None:
        data = dataclasses.replace(data, log1p=log1p)
    cohort = Cohort(data, genes=ckpt["genes"], cancer_types=ckpt["cancer_types"])
    cohort.measured_only = True  # the truth to score against is what was measured, not zero-filled
    ids = cohort.sample_ids(split)
    if not ids:
        raise InputError(f"no WSI with split {split!r} in {data.metadata}")
    truth = with_truth and cohort.expression is not None
    preds, truths, obs, coords = [], [], [], []
    with torch.no_grad():
        for sid in progress(ids, len(ids), "WSIs predicted", logger):
            wsi = cohort.load(sid, with_target=truth)
            preds.append(model(*_tensors(wsi, cohort.cancer_types, device)).cpu().numpy())
            if truth:
                truths.append(wsi.target)
            obs.append(
                pd.DataFrame({"sample_id": sid, "cancer_type": wsi.cancer_type}, index=list(wsi.barcodes))
            )
            coords.append(wsi.coords)
            logger.info("predicted %s: %d spots", sid, len(wsi.barcodes))
    x = np.concatenate(preds).astype(np.float32)
    genes = np.asarray(cohort.genes, dtype=object)
    info = {
        "checkpoint_sha256": sha256_file(checkpoint),
        "split": split,
        "n_wsi": len(ids),
        "n_spots": int(len(x)),
        "n_genes_panel": len(genes),
        "genes_dropped_not_measured": 0,
        "truth": bool(truth),
    }
    x, genes, layers = _measured_only(x, genes, truths, data.log1p, info, split) if truth else (x, genes, {})
    a = _write(out, x, genes, layers, obs, coords, info, overwrite=overwrite, inputs=inputs)
    logger.info("wrote %s: %d spots x %d genes from %d WSIs", out, a.n_obs, a.n_vars, len(ids))
    return info


def read_published_config(path: str | Path, n_cancer_types: int) -> dict:
    """The released ``config.yml``: head counts, and a refusal of what gpc-bench does not
    implement (the graph convolution) or what contradicts the cancer-type list."""
    import yaml

    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise InputError(f"published config {path} is not readable YAML: {err}") from None
    if not isinstance(cfg, dict):
        raise InputError(f"published config {path} is not a mapping")
    graph = cfg.get("graph_config") or {}
    n_conv = int(graph.get("n_conv_layers") or 0)
    if n_conv > 0:
        raise InputError(
            f"{path}: graph_config.n_conv_layers is {n_conv} (conv_type {graph.get('conv_type')!r}): "
            "these weights apply the published graph-convolution layer (img_conv) to the patch "
            "embeddings, which gpc-bench does not implement; dropping it changes every output",
            "import a checkpoint trained with n_conv_layers: 0 (both released ones are)",
        )
    onehot = cfg.get("onco_onehot_dim")
    if onehot is not None and int(onehot) != n_cancer_types:
        raise InputError(
            f"{path}: onco_onehot_dim is {onehot} but --cancer-types lists {n_cancer_types} codes",
            "pass the oncotree_code_list.txt of the split these weights were trained on",
        )
    strategy = cfg.get("conditioning_strategy", "cross_attention")
    if strategy not in (None, "cross_attention"):
        raise InputError(
            f"{path}: conditioning_strategy {strategy!r} is not implemented (only cross_attention)"
        )
    return {
        "cross_attn_heads": int(cfg.get("cross_attn_heads") or 4),
        "transformer_heads": int(cfg.get("transformer_heads") or 8),
    }


def check_truth_scale(t: np.ndarray, log1p: bool) -> None:
    """Refuse truth that does not look like the model's targets: raw counts (integers beyond 20)
    written while log1p is off; warn when log1p was applied to values that were not counts."""
    vals = t[np.isfinite(t)]
    if not vals.size:
        return
    integer = bool(np.all(vals == np.round(vals)))
    top = float(vals.max())
    if not log1p and integer and top > 20:
        raise InputError(
            f"the expression to write as truth looks like raw counts (integers up to {top:.0f}), but "
            "log1p is off: the model predicts log1p expression, so scores against it would be wrong",
            "pass --log1p (the published loader applies log1p to counts), or --no-truth",
        )
    if log1p and not integer:
        logger.warning(
            "log1p was applied to expression that is not integer counts (up to %.3g before log1p): "
            "if it was already log1p, predict with --no-log1p",
            float(np.expm1(top)),
        )


def import_published(
    weights: str | Path,
    genes: list[str],
    cancer_types: list[str],
    out: str | Path,
    data: DataConfig | None = None,
    cross_attn_heads: int = 4,
    transformer_heads: int = 8,
    published_config: str | Path | None = None,
) -> dict:
    """Turn a state dict saved by the published HistoPrism code into a gpc-bench checkpoint.

    Sizes are read from the weights; head counts cannot be (the published configs use 4 and 8):
    with ``published_config`` (the released ``config.yml``) they come from it, and a model that
    uses the graph convolution (``graph_config.n_conv_layers`` > 0), which gpc-bench does not
    implement, is refused. The expression targets are recorded as log1p of counts (the published
    loader's), unless ``data`` says otherwise.
    The panel and the cancer-type order must be the ones the weights were trained with (the published
    ``stpath_genes.yaml`` order and ``oncotree_code_list.txt``).

    Returns
    -------
    dict
        The model config and the ignored keys.
    """
    from .train import save_checkpoint

    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:
        raise InputError(f"cannot read {weights}: {err}".splitlines()[0]) from None
    if isinstance(state, dict) and isinstance(state.get("model_state"), dict):
        state = state["model_state"]
    if published_config is not None:
        heads = read_published_config(published_config, len(cancer_types))
        cross_attn_heads, transformer_heads = heads["cross_attn_heads"], heads["transformer_heads"]
    else:
        logger.warning(
            "no --published-config: the heads are assumed (%d/%d) and the use of the graph "
            "convolution cannot be checked; pass the released config.yml",
            cross_attn_heads, transformer_heads,
        )  # fmt: skip
    mcfg = config_from_state_dict(
        state, cross_attn_heads=cross_attn_heads, transformer_heads=transformer_heads
    )
    if mcfg.n_genes != len(genes):
        raise InputError(f"the weights predict {mcfg.n_genes} genes but the panel lists {len(genes)}")
    if mcfg.conditioning and mcfg.n_cancer_types != len(cancer_types):
        raise InputError(
            f"the weights take {mcfg.n_cancer_types} cancer types but {len(cancer_types)} were given",
            "pass the oncotree_code_list.txt of the split the weights were trained on",
        )
    model = HistoPrism(mcfg)
    ignored = load_published_state_dict(model, state)
    run = RunConfig(data=data or DataConfig(log1p=True), model=mcfg)
    extra = {"epoch": -1, "val_mse": float("nan"), "imported_from": str(weights)}
    save_checkpoint(Path(out), model, list(genes), list(cancer_types), run, extra)
    return {"model_config": dataclasses.asdict(mcfg), "ignored_keys": ignored}
