"""Configuration of the reference HistoPrism model: sizes, data paths and training settings.

Everything here is plain Python (no torch), so a config can be read, checked and recorded anywhere.
A YAML file has three blocks, ``data``, ``model`` and ``train``, plus ``out`` (the run folder);
relative paths are resolved against the YAML file's folder. See docs/model.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from gpc_bench._errors import InputError


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the network. The paper's values are the defaults.

    Attributes
    ----------
    img_dim
        Width of the patch embeddings (UNI: 1024). Filled from the data when 0.
    n_genes
        Output genes. Filled from the gene panel when 0.
    n_cancer_types
        Width of the cancer-type one-hot. Filled from the metadata when 0.
    hidden_dim
        Transformer width (256).
    cross_attn_heads
        Heads of the cancer-type cross-attention (4).
    transformer_heads, transformer_layers
        Self-attention encoder (8 heads, 2 layers).
    dim_feedforward
        Feed-forward width of each encoder layer; the published code keeps PyTorch's default 2048.
    dropout
        Dropout everywhere (0.1).
    conditioning
        Cancer-type cross-attention on (``False``: the ``--no-conditioning`` ablation).
    pos_enc
        Add a 2-D sinusoidal encoding of the spot coordinates (the ``--pos-enc`` ablation).
    """

    img_dim: int = 0
    n_genes: int = 0
    n_cancer_types: int = 0
    hidden_dim: int = 256
    cross_attn_heads: int = 4
    transformer_heads: int = 8
    transformer_layers: int = 2
    dim_feedforward: int = 2048
    dropout: float = 0.1
    conditioning: bool = True
    pos_enc: bool = False


@dataclass(frozen=True)
class DataConfig:
    """Where the inputs are and how to read them.

    Attributes
    ----------
    metadata
        CSV with ``sample_id``, ``cancer_type`` (or ``oncotree_code``) and ``split`` (train/val/test).
    embeddings
        Folder of per-WSI embeddings: ``<sample_id>.h5`` (HEST style: ``embeddings``, ``barcodes``,
        optional ``coords``) or ``<sample_id>_embeddings.pt`` (dict barcode -> [1, D] tensor).
    expression
        Folder of ``<sample_id>.h5ad``, or one cohort ``.h5ad`` with ``obs["sample_id"]``. Optional for
        ``predict``.
    genes
        Gene panel: a text file (one ID a line) or JSON (a list, or ``{"genes": [...]}``). Default:
        the genes of the cohort file, or of the first training WSI's file.
    cancer_types
        The one-hot order: a list, or a text file with one code a line (the published
        ``oncotree_code_list.txt``). Default: the sorted codes of the metadata.
    log1p
        Apply ``log1p`` to the expression (raw counts). No library-size normalisation, as the
        published code does.
    min_barcode_overlap
        Refuse a WSI whose embeddings and expression share fewer than this share of the embedding
        barcodes.
    cache
        Keep the loaded WSIs in memory between epochs (turn off for HEST-1k scale cohorts).
    targets
        ``nan-mask`` (default): panel genes a WSI does not measure are NaN and left out of the loss,
        and expression IDs must be of the panel's style. ``published``: as the published loader
        (``get_gene_array_efficient``): expression genes are mapped to the panel's IDs (symbols to
        Ensembl through ``gene_map``), the log1p values of genes mapping to one ID are summed, and
        panel genes or embedding spots without expression are 0 (docs/model.md).
    gene_map
        With ``targets: published``: a JSON ``{expression gene: panel ID}`` (STPath's
        symbol-to-Ensembl dict). Default: gpc-bench's gene table (docs/model.md).
    empty_cancer_type
        A WSI whose cancer type is empty: ``error`` (default: refused, listing them) or ``zeros``
        (the published all-zero one-hot).
    """

    metadata: str = ""
    embeddings: str = ""
    expression: str | None = None
    genes: str | None = None
    cancer_types: tuple[str, ...] | str | None = None
    log1p: bool = False
    min_barcode_overlap: float = 0.9
    cache: bool = True
    targets: str = "nan-mask"
    gene_map: str | None = None
    empty_cancer_type: str = "error"

    def __post_init__(self) -> None:
        if self.targets not in ("nan-mask", "published"):
            raise InputError(f"data.targets must be 'nan-mask' or 'published', not {self.targets!r}")
        if self.empty_cancer_type not in ("error", "zeros"):
            raise InputError(
                f"data.empty_cancer_type must be 'error' or 'zeros', not {self.empty_cancer_type!r}"
            )


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation. Defaults follow the paper's appendix (lr 5e-4, at most 1,000 epochs).

    Attributes
    ----------
    lr, weight_decay
        AdamW settings.
    max_epochs
        Upper bound on epochs.
    patience
        Early stopping: epochs without a better validation MSE before stopping.
    grad_clip
        Gradient-norm clipping.
    wsis_per_step
        WSIs whose gradients are averaged per optimiser step, per process (the paper: 1).
    seed
        Seeds initialisation, dropout and the WSI order.
    threads
        Torch intra-op threads (``None``: torch's default).
    schedule
        ``constant`` (default) or ``warmup-linear``: linear warm-up over ``warmup_fraction`` of all
        steps (``max_epochs`` x steps per epoch), then linear decay to 0, as the published runs
        (with 5,000 epochs and 501 WSIs the warm-up lasts 250 epochs).
    warmup_fraction
        Share of all steps spent warming up (published: 0.05).
    precision
        ``fp32`` (default) or ``fp16``: autocast to float16 with loss scaling, as the published
        runs; CUDA only.
    """

    lr: float = 5e-4
    weight_decay: float = 0.01
    max_epochs: int = 1000
    patience: int = 30
    grad_clip: float = 1.0
    wsis_per_step: int = 1
    seed: int = 0
    threads: int | None = None
    schedule: str = "constant"
    warmup_fraction: float = 0.05
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.schedule not in ("constant", "warmup-linear"):
            raise InputError(f"train.schedule must be 'constant' or 'warmup-linear', not {self.schedule!r}")
        if not 0 <= self.warmup_fraction < 1:
            raise InputError(f"train.warmup_fraction must be in [0, 1), not {self.warmup_fraction}")
        if self.precision not in ("fp32", "fp16"):
            raise InputError(f"train.precision must be 'fp32' or 'fp16', not {self.precision!r}")


@dataclass(frozen=True)
class RunConfig:
    """A whole training run: data, model, training, and the output folder."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str = "histoprism-run"

    def to_dict(self) -> dict:
        """Plain nested dict (for YAML, JSON and checkpoints)."""
        d = dataclasses.asdict(self)
        if isinstance(d["data"]["cancer_types"], tuple):
            d["data"]["cancer_types"] = list(d["data"]["cancer_types"])
        return d


def _block(cls, raw: dict | None, where: str):
    raw = dict(raw or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise InputError(
            f"unknown key(s) in the {where!r} block of the model config: {unknown}",
            f"valid keys: {sorted(names)}",
        )
    if cls is DataConfig and isinstance(raw.get("cancer_types"), list):
        raw["cancer_types"] = tuple(str(c) for c in raw["cancer_types"])
    return cls(**raw)


def from_dict(d: dict, base: Path | None = None) -> RunConfig:
    """Build a :class:`RunConfig` from a nested dict, resolving relative paths against ``base``.

    Raises
    ------
    InputError
        On an unknown block or key.
    """
    unknown = sorted(set(d) - {"data", "model", "train", "out"})
    if unknown:
        raise InputError(f"unknown block(s) in the model config: {unknown}", "use data, model, train and out")
    data = _block(DataConfig, d.get("data"), "data")
    if base is not None:
        paths = {}
        for key in ("metadata", "embeddings", "expression", "genes", "cancer_types", "gene_map"):
            v = getattr(data, key)
            if isinstance(v, str) and v and not Path(v).is_absolute():
                paths[key] = str((base / v).resolve())
        data = dataclasses.replace(data, **paths)
    out = str(d.get("out", "histoprism-run"))
    if base is not None and not Path(out).is_absolute():
        out = str((base / out).resolve())
    return RunConfig(
        data=data,
        model=_block(ModelConfig, d.get("model"), "model"),
        train=_block(TrainConfig, d.get("train"), "train"),
        out=out,
    )


def load_config(path: str | Path) -> RunConfig:
    """Read a YAML run config.

    Raises
    ------
    InputError
        When the file is missing, is not YAML, or has unknown keys.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"model config {path} not found", "pass the YAML file given to --config")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise InputError(f"model config {path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise InputError(f"model config {path} must be a mapping with data/model/train blocks")
    return from_dict(raw, base=path.parent.resolve())


def example_config(name: str = "paper") -> Path:
    """Path of a shipped example config: ``paper`` (the appendix) or ``released`` (the checkpoints')."""
    p = Path(__file__).parent / "configs" / f"{name}.yml"
    if not p.is_file():
        raise InputError(f"no example config named {name!r}", "use 'paper' or 'released'")
    return p
