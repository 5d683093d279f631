"""``gpc-bench model ...``: train, predict, featurize and import published weights.

Options are parsed here and the work is done by the modules of this package; torch is imported only
when a command that needs it runs.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import click

from gpc_bench._cli_errors import SEED
from gpc_bench._cli_errors import friendly as _friendly
from gpc_bench._errors import InputError


def _require_torch() -> None:
    if importlib.util.find_spec("torch") is None:
        raise InputError(
            "PyTorch is not installed", "install the model extra: pip install 'gpc-bench[model]'"
        )


_DEVICE = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Torch device (auto: CUDA when available).",
)


@click.group("model")
def model_grp() -> None:
    """The reference HistoPrism model (needs the [model] extra: PyTorch)."""


@model_grp.command("train")
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), required=True, help="YAML run config."
)
@click.option("--out", type=click.Path(path_type=Path), help="Run folder (overrides the config's out).")
@click.option("--max-epochs", type=int, help="Override train.max_epochs.")
@click.option("--seed", type=SEED, help="Override train.seed.")
@click.option(
    "--pos-enc", is_flag=True, default=None, help="Ablation: add a 2-D sinusoidal position encoding."
)
@click.option("--no-conditioning", is_flag=True, help="Ablation: no cancer-type cross-attention.")
@_DEVICE
@click.option("--overwrite", is_flag=True, help="Replace a non-empty run folder.")
@_friendly
def train_cmd(config_path, out, max_epochs, seed, pos_enc, no_conditioning, device, overwrite):
    """Train HistoPrism; run under `torchrun --no-python` for several processes."""
    _require_torch()
    from .config import load_config
    from .train import train

    cfg = load_config(config_path)
    model = cfg.model
    if pos_enc:
        model = dataclasses.replace(model, pos_enc=True)
    if no_conditioning:
        model = dataclasses.replace(model, conditioning=False)
    tr = cfg.train
    if max_epochs is not None:
        tr = dataclasses.replace(tr, max_epochs=max_epochs)
    if seed is not None:
        tr = dataclasses.replace(tr, seed=seed)
    cfg = dataclasses.replace(cfg, model=model, train=tr, out=str(out) if out else cfg.out)
    s = train(cfg, overwrite=overwrite, device=device)
    click.echo(
        f"trained {s['epochs']} epochs (best {s['best_epoch']}), {s['n_parameters']:,} parameters; "
        f"checkpoint {s['checkpoint']}"
    )


@model_grp.command("predict")
@click.option("--checkpoint", type=click.Path(path_type=Path), required=True, help="checkpoint.pt to use.")
@click.option("--split", default="test", show_default=True, help="Which metadata split to predict.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Prediction .h5ad to write.")
@click.option("--metadata", type=click.Path(path_type=Path), help="Metadata CSV (default: the checkpoint's).")
@click.option(
    "--embeddings", type=click.Path(path_type=Path), help="Embeddings folder (default: the checkpoint's)."
)
@click.option(
    "--expression",
    type=click.Path(path_type=Path),
    help="Expression for layers['truth'] (default: the checkpoint's).",
)
@click.option("--no-truth", is_flag=True, help="Do not write layers['truth'].")
@click.option(
    "--log1p/--no-log1p",
    default=None,
    help="Apply log1p to the expression written as truth (default: as the checkpoint records).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@_DEVICE
@_friendly
def predict_cmd(checkpoint, split, out, metadata, embeddings, expression, no_truth, log1p, overwrite, device):
    """Predict a split and write the .h5ad that `gpc-bench score` reads."""
    _require_torch()
    import torch

    from .config import DataConfig
    from .predict import predict
    from .train import load_checkpoint

    dev = "cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu"
    data = None
    if metadata or embeddings or expression:
        _, ckpt = load_checkpoint(checkpoint)
        raw = dict(ckpt["run_config"]["data"])
        raw["cancer_types"] = (
            tuple(raw["cancer_types"])
            if isinstance(raw.get("cancer_types"), list)
            else raw.get("cancer_types")
        )
        for key, v in (("metadata", metadata), ("embeddings", embeddings), ("expression", expression)):
            if v:
                raw[key] = str(v)
        data = DataConfig(**raw)
    info = predict(
        checkpoint, out, split=split, data=data, with_truth=not no_truth, overwrite=overwrite, device=dev,
        log1p=log1p,
    )  # fmt: skip
    truth = "with layers['truth']" if info["truth"] else "without truth"
    click.echo(f"predictions {out}: {info['n_spots']} spots from {info['n_wsi']} WSIs, {truth}")


@model_grp.command("featurize")
@click.option("--image", type=click.Path(path_type=Path), help="H&E image of one WSI.")
@click.option(
    "--spots", type=click.Path(path_type=Path), help="Spot table (pixel_x, pixel_y; barcode or x, y)."
)
@click.option("--out", type=click.Path(path_type=Path), help="Embeddings .h5 to write (with --image).")
@click.option(
    "--pca", "pca_path", type=click.Path(path_type=Path), help="Apply this fitted pca.npz (with --image)."
)
@click.option(
    "--manifest",
    type=click.Path(path_type=Path),
    help="CSV sample_id,image,spots,split: featurize all, PCA fitted on train.",
)
@click.option(
    "--out-dir",
    type=click.Path(path_type=Path),
    help="Folder for <sample_id>.h5 and pca.npz (with --manifest).",
)
@click.option(
    "--n-components",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="PCA components (with --manifest).",
)
@click.option("--patch-size", type=int, default=224, show_default=True, help="Patch side in pixels.")
@click.option(
    "--grid", type=int, default=8, show_default=True, help="Downsampled patch side (grid x grid RGB)."
)
@_friendly
def featurize_cmd(image, spots, out, pca_path, manifest, out_dir, n_components, patch_size, grid):
    """Simple pixel features of H&E patches: a weak stand-in for a foundation model."""
    from .featurize import featurize, featurize_manifest, load_pca

    if manifest:
        if image or spots or out or not out_dir:
            raise InputError("--manifest goes with --out-dir only")
        info = featurize_manifest(manifest, out_dir, n_components, patch_size, grid)
        click.echo(f"embeddings of {info['n_wsi']} WSIs ({info['n_components']} PCA components) in {out_dir}")
        return
    if not (image and spots and out):
        raise InputError("give --image, --spots and --out (or --manifest and --out-dir)")
    n = featurize(image, spots, out, load_pca(pca_path) if pca_path else None, patch_size, grid)
    click.echo(f"embeddings {out}: {n} spots")


@model_grp.command("import-published")
@click.argument("weights", type=click.Path(path_type=Path, exists=True))
@click.option(
    "--genes", type=click.Path(path_type=Path), required=True, help="The panel the weights predict, in order."
)
@click.option(
    "--cancer-types",
    type=click.Path(path_type=Path),
    required=True,
    help="oncotree_code_list.txt of the weights' split.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="gpc-bench checkpoint to write.")
@click.option(
    "--cross-attn-heads", type=int, default=4, show_default=True, help="Heads of the cross-attention."
)
@click.option("--transformer-heads", type=int, default=8, show_default=True, help="Heads of the encoder.")
@click.option(
    "--published-config",
    type=click.Path(path_type=Path, exists=True),
    help="The released config.yml: heads from it, and a model using the graph convolution refused.",
)
@click.option(
    "--log1p/--no-log1p",
    default=True,
    show_default=True,
    help="Record the targets as log1p of counts (the published loader's).",
)
@_friendly
def import_cmd(
    weights, genes, cancer_types, out, cross_attn_heads, transformer_heads, published_config, log1p
):
    """Convert a state dict saved by the published HistoPrism code into a checkpoint."""
    _require_torch()
    from .data import read_gene_list
    from .predict import import_published

    codes = [line.strip() for line in cancer_types.read_text().splitlines() if line.strip()]
    from .config import DataConfig

    info = import_published(
        weights, read_gene_list(genes), codes, out, DataConfig(log1p=log1p), cross_attn_heads,
        transformer_heads, published_config,
    )  # fmt: skip
    ignored = (
        f"; ignored {len(info['ignored_keys'])} unused graph-convolution keys" if info["ignored_keys"] else ""
    )
    click.echo(f"checkpoint {out}: {info['model_config']['n_genes']} genes{ignored}")
