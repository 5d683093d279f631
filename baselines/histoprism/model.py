"""The HistoPrism network: cancer-type cross-attention, a transformer encoder and an MLP head.

Module names follow the published ``models/HistoPrIsm.py`` (susuhu/HistoPrism), so a state dict saved
by that code loads here (:func:`load_published_state_dict`). One WSI is one sequence of patches.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from gpc_bench._errors import InputError

from .config import ModelConfig

logger = logging.getLogger("gpc_bench.model")

#: Keys of the published state dict that belong to graph-convolution modules the published code
#: builds but never uses when ``n_conv_layers`` is 0. They are ignored when loading, nothing else is.
PUBLISHED_UNUSED_PREFIXES = ("img_conv.", "img_norm.")


class CrossAttentionLayer(nn.Module):
    """Patch features (queries) attend to the cancer-type embedding (key and value); Add & Norm.

    With one context token the softmax weight is 1 for every query, so the output is
    ``LayerNorm(x + W_o (W_v c + b_v) + b_o)``: a learned offset per cancer type (docs/model.md).
    """

    def __init__(self, query_dim: int, context_dim: int, n_heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.attention = nn.MultiheadAttention(
            embed_dim=query_dim,
            kdim=context_dim,
            vdim=context_dim,
            num_heads=n_heads,
            dropout=dropout,
            batch_first=True,
        )
        self.norm = nn.LayerNorm(query_dim)

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        out, _ = self.attention(query=query, key=context, value=context, need_weights=False)
        return self.norm(query + out)


def sinusoidal_2d(coords: torch.Tensor, dim: int) -> torch.Tensor:
    """2-D sinusoidal position encoding (``dim / 2`` channels per axis) of spot coordinates.

    Coordinates are first expressed in units of the median nearest-neighbour distance, so that one
    step is one spot whatever the pixel scale.
    """
    if dim % 4:
        raise InputError(f"hidden_dim {dim} must be divisible by 4 for the position encoding")
    c = coords.to(torch.float64)
    c = c - c.min(0).values
    if len(c) > 1:
        from scipy.spatial import cKDTree

        d, _ = cKDTree(c.numpy()).query(c.numpy(), k=2)
        step = float(torch.tensor(d[:, 1]).median())
        c = c / (step if step > 0 else 1.0)
    quarter = dim // 4
    freq = torch.exp(-math.log(10000.0) * torch.arange(quarter, dtype=torch.float64) / quarter)
    parts = []
    for axis in range(2):
        ang = c[:, axis : axis + 1] * freq
        parts += [torch.sin(ang), torch.cos(ang)]
    return torch.cat(parts, 1).to(torch.float32)


@contextmanager
def _sdpa_encoder():
    """Run the encoder through ``scaled_dot_product_attention`` rather than its fused fast path.

    In eval mode ``nn.TransformerEncoder`` takes a fused fast path that, on CPU, materialises the
    N x N attention weights; the standard path calls ``scaled_dot_product_attention``, whose flash
    kernel does not. Measured at N = 16,384 (benchmarks/bench_model.py): 6.3 s and 2.6 GiB instead of
    14-17 s and 8.2 GiB. The flag is global in torch, so it is restored on exit.
    """
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


class HistoPrism(nn.Module):
    """Reference HistoPrism.

    Parameters
    ----------
    config
        Sizes; ``img_dim``, ``n_genes`` and (with conditioning) ``n_cancer_types`` must be set.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        for name in ("img_dim", "n_genes") + (("n_cancer_types",) if config.conditioning else ()):
            if getattr(config, name) <= 0:
                raise InputError(f"model config: {name} must be positive, got {getattr(config, name)}")
        self.config = config
        d_img, d_h = config.img_dim, config.hidden_dim
        if config.conditioning:
            self.onco_embedder = nn.Linear(config.n_cancer_types, d_img)
            self.conditioner = CrossAttentionLayer(d_img, d_img, config.cross_attn_heads, config.dropout)
        else:
            self.onco_embedder = None
            self.conditioner = None
        self.input_proj = nn.Linear(d_img, d_h)
        layer = nn.TransformerEncoderLayer(
            d_model=d_h,
            nhead=config.transformer_heads,
            dim_feedforward=config.dim_feedforward,
            dropout=config.dropout,
            batch_first=True,
        )
        # enable_nested_tensor only matters with padding masks; one WSI per sequence has none
        self.transformer = nn.TransformerEncoder(
            layer, num_layers=config.transformer_layers, enable_nested_tensor=False
        )
        self.gene_regression_head = nn.Sequential(
            nn.Linear(d_h, d_h),
            nn.LayerNorm(d_h),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(d_h, config.n_genes),
        )

    def condition(self, emb: torch.Tensor, onco: torch.Tensor | None) -> torch.Tensor:
        """Cancer-type conditioning of the patch embeddings (``N x D_img`` in and out)."""
        if self.conditioner is None:
            return emb
        if onco is None:
            raise InputError("this model is conditioned on the cancer type: pass its one-hot")
        c = self.onco_embedder(onco.reshape(1, -1)).unsqueeze(0)  # [1, 1, D_img]
        return self.conditioner(query=emb.unsqueeze(0), context=c).squeeze(0)

    def forward(
        self, emb: torch.Tensor, onco: torch.Tensor | None = None, coords: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Predicted log1p expression of one WSI.

        Parameters
        ----------
        emb
            Patch embeddings, ``N x D_img``.
        onco
            Cancer-type one-hot, ``D_onco`` or ``1 x D_onco``.
        coords
            Spot coordinates ``N x 2`` (only with ``pos_enc``).

        Returns
        -------
        torch.Tensor
            ``N x n_genes``.
        """
        h = self.input_proj(self.condition(emb, onco))
        if self.config.pos_enc:
            if coords is None:
                raise InputError(
                    "pos_enc is on but this WSI has no coordinates", "add coords to the embeddings"
                )
            h = h + sinusoidal_2d(coords, h.shape[1]).to(h.device, h.dtype)
        with _sdpa_encoder():
            h = self.transformer(h.unsqueeze(0)).squeeze(0)
        return self.gene_regression_head(h)


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE over the finite targets (NaN marks a gene missing from the WSI's panel)."""
    mask = ~torch.isnan(target)
    if not bool(mask.any()):
        return pred.sum() * 0.0
    return F.mse_loss(pred[mask], target[mask])


def n_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def config_from_state_dict(state: dict, **overrides) -> ModelConfig:
    """Infer the sizes of a published state dict (heads cannot be inferred: pass them if not 4/8)."""
    try:
        w_in = state["input_proj.weight"]
        w_out = state["gene_regression_head.4.weight"]
    except KeyError as err:
        raise InputError(
            f"state dict has no {err.args[0]!r}: not a HistoPrism state dict",
            "pass the model_state of a checkpoint written by the published train.py",
        ) from None
    layers = {k.split(".")[2] for k in state if k.startswith("transformer.layers.")}
    ff = state.get("transformer.layers.0.linear1.weight")
    sizes = dict(
        img_dim=int(w_in.shape[1]),
        hidden_dim=int(w_in.shape[0]),
        n_genes=int(w_out.shape[0]),
        n_cancer_types=int(state["onco_embedder.weight"].shape[1]) if "onco_embedder.weight" in state else 0,
        conditioning="onco_embedder.weight" in state,
        transformer_layers=len(layers),
        dim_feedforward=int(ff.shape[0]) if ff is not None else 2048,
    )
    sizes.update(overrides)
    return ModelConfig(**sizes)


def load_published_state_dict(model: HistoPrism, state: dict) -> list[str]:
    """Load a state dict saved by the published HistoPrism code into ``model``.

    Accepts the bare state dict or a checkpoint dict holding it under ``model_state`` (the published
    ``save_checkpoint``). Keys of the unused graph-convolution modules (``img_conv.*``, ``img_norm.*``)
    are ignored; any other missing or unexpected key, or a shape mismatch, is refused.

    Returns
    -------
    list of str
        The ignored keys.

    Raises
    ------
    InputError
        On any other mismatch, with the keys named.
    """
    if "model_state" in state and isinstance(state["model_state"], dict):
        state = state["model_state"]
    ignored = sorted(k for k in state if k.startswith(PUBLISHED_UNUSED_PREFIXES))
    kept = {k: v for k, v in state.items() if not k.startswith(PUBLISHED_UNUSED_PREFIXES)}
    own = model.state_dict()
    missing = sorted(set(own) - set(kept))
    unexpected = sorted(set(kept) - set(own))
    shapes = sorted(
        f"{k}: {tuple(kept[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(kept)
        if tuple(kept[k].shape) != tuple(own[k].shape)
    )
    if missing or unexpected or shapes:
        from gpc_bench._errors import examples

        parts = []
        if missing:
            parts.append(f"missing {len(missing)} {examples(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} {examples(unexpected)}")
        if shapes:
            parts.append(f"shape mismatch {len(shapes)} {examples(shapes)}")
        raise InputError(
            "the state dict does not fit this HistoPrism: " + "; ".join(parts),
            "check img_dim, n_genes, the cancer-type list and the head counts against the published config",
        )
    model.load_state_dict(kept, strict=True)
    if ignored:
        logger.info("ignored %d unused graph-convolution keys of the published state dict", len(ignored))
    return ignored
