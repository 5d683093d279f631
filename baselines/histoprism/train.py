"""Training: AdamW, gradient clipping, one WSI per step, early stopping on validation MSE.

Runs in one process, or under ``torchrun`` (gloo on CPU, NCCL on GPUs): each epoch's permutation of
the WSIs is cut into steps of ``wsis_per_step`` x processes WSIs, never padded; each process sums the
gradients of its WSIs of a step, and the sums and counts are all-reduced, so a step's gradient is the
mean over the WSIs it held. Only rank 0 writes. With ``wsis_per_step = k`` one process steps over the
same groups that k processes share, so the two give the same model (tested). Options reproduce the
published training: a warm-up/linear schedule, fp16 with loss scaling, non-finite WSIs skipped.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from gpc_bench._errors import InputError
from gpc_bench._progress import Progress
from gpc_bench.io.runfolder import atomic_file, dumps_json

from .config import RunConfig
from .data import Cohort, Wsi, onehot
from .model import HistoPrism, masked_mse, n_parameters

if TYPE_CHECKING:
    from .config import TrainConfig

logger = logging.getLogger("gpc_bench.model")

CHECKPOINT_FORMAT = "gpc-bench/histoprism-1"


@dataclasses.dataclass
class _Dist:
    world: int = 1
    rank: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_dist(device: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if world == 1:
        return _Dist(device=torch.device("cuda" if use_cuda else "cpu"))
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    return _Dist(world, rank, dev)


def _all_sum(values: list[float], dist_info: _Dist) -> list[float]:
    if dist_info.world == 1:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=dist_info.device)
    dist.all_reduce(t)
    return t.tolist()


def _tensors(wsi: Wsi, codes: list[str], device) -> tuple:
    emb = torch.from_numpy(wsi.embeddings).to(device)
    onco = torch.from_numpy(onehot(wsi.cancer_type, codes)).to(device)
    coords = torch.from_numpy(wsi.coords) if wsi.coords is not None else None
    return emb, onco, coords


def rank_seed(seed: int, rank: int) -> int:
    """The dropout seed of a rank: distinct per rank, reproducible."""
    return (seed * 1_000_003 + rank + 1) % 2**63


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The WSI order of an epoch: the permutation ``DistributedSampler`` draws (seed + epoch), but
    never padded: the last optimiser step is short when the WSIs do not divide evenly."""
    g = torch.Generator()
    g.manual_seed(seed + epoch)
    return torch.randperm(n, generator=g).tolist()


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over ``warmup`` steps, then linear decay to 0 at ``total`` (the schedule of
    the published runs: ``transformers.get_linear_schedule_with_warmup``)."""
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def make_schedule(
    opt: torch.optim.Optimizer, tc: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR | None:
    """``train.schedule``: ``constant`` (None), or ``warmup-linear`` over ``max_epochs`` epochs
    with ``int(warmup_fraction * total)`` warm-up steps, as the published training."""
    if tc.schedule == "constant":
        return None
    total = tc.max_epochs * steps_per_epoch
    warmup = int(tc.warmup_fraction * total)
    logger.info("learning rate: linear warm-up over %d of %d steps, then linear decay", warmup, total)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, warmup, total))


def make_scaler(tc: TrainConfig, device: torch.device) -> torch.amp.GradScaler | None:
    """``train.precision: fp16``: autocast to float16 with a loss-scaling GradScaler (CUDA only)."""
    if tc.precision == "fp32":
        return None
    if device.type != "cuda":
        raise InputError(
            "train.precision fp16 (autocast with loss scaling) runs on CUDA only",
            "use precision: fp32 on the CPU (the default)",
        )
    return torch.amp.GradScaler(device.type)


def _all_reduce_grads(model, n: int, dist_info) -> int:
    """Sum the gradients and the WSI counts of all ranks; returns the total count. A rank without
    a WSI in the step contributes zeros."""
    if dist_info.world == 1:
        return n
    import torch.distributed as dist

    params = [p for p in model.parameters() if p.requires_grad]
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    flat = torch.cat([flat, torch.tensor([float(n)], device=flat.device, dtype=flat.dtype)])
    dist.all_reduce(flat)
    k = 0
    for p in params:
        m = p.numel()
        p.grad = flat[k : k + m].view_as(p).clone()
        k += m
    return int(round(float(flat[-1])))


def train_step(
    model: HistoPrism,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LambdaLR | None,
    scaler: torch.amp.GradScaler | None,
    wsis: list[Wsi],
    codes: dict,
    tc: TrainConfig,
    dist_info: _Dist,
) -> tuple[float, int, int]:
    """One optimiser step over this rank's ``wsis`` of the step (possibly none).

    The gradient is the mean over every WSI of the step on all ranks (each rank's sum, all-reduced,
    divided by the total count), so a short last step weighs each WSI it holds equally. A WSI whose
    loss is not finite is skipped, and a parameter whose gradient is not finite gets none, as the
    published training does. Returns this rank's loss sum, WSIs used and WSIs skipped.
    """
    device = dist_info.device
    opt.zero_grad(set_to_none=True)
    loss_sum, n, skipped = 0.0, 0, 0
    for wsi in wsis:
        with torch.autocast(device.type, dtype=torch.float16, enabled=scaler is not None):
            loss = masked_mse(model(*_tensors(wsi, codes, device)), torch.from_numpy(wsi.target).to(device))
        if not torch.isfinite(loss):
            logger.warning("WSI %s: non-finite loss (%s), skipped", wsi.sample_id, float(loss.detach()))
            skipped += 1
            continue
        (scaler.scale(loss) if scaler is not None else loss).backward()
        loss_sum += float(loss.detach())
        n += 1
    total = _all_reduce_grads(model, n, dist_info)
    if total == 0:  # every WSI of the step skipped: no update, and the schedule does not advance
        opt.zero_grad(set_to_none=True)
        return loss_sum, n, skipped
    for p in model.parameters():
        if p.grad is not None:
            p.grad.div_(total)
    if scaler is not None:
        scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
    for p in model.parameters():
        if p.grad is not None and not torch.isfinite(p.grad).all():
            p.grad = None
    if scaler is not None:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    if sched is not None:
        sched.step()
    return loss_sum, n, skipped


def seed_all(seed: int) -> None:
    """Seed torch (the only random source of training) and ask it for deterministic kernels."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def evaluate(model: HistoPrism, cohort: Cohort, ids: list[str], device: torch.device) -> tuple[float, int]:
    """Sum of per-WSI masked MSE over ``ids`` and their count (dropout off)."""
    model.eval()
    total = 0.0
    with torch.no_grad():
        for sid in ids:
            wsi = cohort.load(sid)
            pred = model(*_tensors(wsi, cohort.cancer_types, device))
            total += float(masked_mse(pred, torch.from_numpy(wsi.target).to(device)))
    return total, len(ids)


def save_checkpoint(
    path: Path, model: HistoPrism, genes: list[str], cancer_types: list[str], cfg: RunConfig, extra: dict
) -> None:
    """Write a checkpoint that ``torch.load(..., weights_only=True)`` reads, atomically."""
    from gpc_bench._version import __version__

    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "model_config": dataclasses.asdict(model.config),
        "genes": list(genes),
        "cancer_types": list(cancer_types),
        "state_dict": model.state_dict(),
        "run_config": cfg.to_dict(),
        "versions": {"gpc_bench": str(__version__), "torch": str(torch.__version__)},
        **extra,
    }
    with atomic_file(path) as tmp:
        torch.save(ckpt, tmp)


def train(cfg: RunConfig, overwrite: bool = False, device: str = "auto") -> dict:
    """Train the reference model as ``cfg`` says and write its run folder (``cfg.out``).

    The folder holds ``checkpoint.pt`` (the best epoch on validation MSE; the last epoch when there is
    no validation split), ``history.csv`` (one row per epoch), ``config.yml`` (the resolved config)
    and ``train_summary.json``.

    Parameters
    ----------
    cfg
        The run config (:func:`~gpc_bench.baselines.histoprism.config.load_config`).
    overwrite
        Replace a non-empty output folder.
    device
        ``auto`` (CUDA when available), ``cpu`` or ``cuda``.

    Returns
    -------
    dict
        The training summary (also written as ``train_summary.json``).
    """
    t0 = time.perf_counter()
    dist_info = _setup_dist(device)
    tc = cfg.train
    if tc.wsis_per_step < 1:
        raise InputError(f"train.wsis_per_step must be at least 1, got {tc.wsis_per_step}")
    if tc.threads:
        torch.set_num_threads(tc.threads)
    seed_all(tc.seed)
    out = Path(cfg.out)
    folder = nullcontext(out)  # other ranks write nothing
    if dist_info.main:
        from gpc_bench.io.runfolder import atomic_dir

        inputs = [cfg.data.metadata, cfg.data.embeddings, cfg.data.expression, cfg.data.genes]
        folder = atomic_dir(out, overwrite, kind="training run", inputs=inputs)
    with folder as work:  # an interrupted or failed run leaves no folder behind
        summary = _fit(cfg, dist_info, work, t0)
    if dist_info.world > 1:
        import torch.distributed as dist

        dist.barrier()
    return summary


def _build_model(cfg: RunConfig, cohort, n_train: int, n_val: int, dist_info, first_id: str):
    """The model for ``cohort`` (its input width read from the first training WSI) and the run
    config with the model block filled in."""
    tc = cfg.train
    first = cohort.load(first_id)
    mcfg = dataclasses.replace(
        cfg.model,
        img_dim=first.embeddings.shape[1],
        n_genes=len(cohort.genes),
        n_cancer_types=len(cohort.cancer_types),
    )
    if cfg.model.img_dim and cfg.model.img_dim != mcfg.img_dim:
        raise InputError(
            f"model.img_dim is {cfg.model.img_dim} but the embeddings have {mcfg.img_dim} columns"
        )
    cfg = dataclasses.replace(cfg, model=mcfg)
    model = HistoPrism(mcfg).to(dist_info.device)  # the same initial weights on every rank
    if dist_info.world > 1:  # then each rank its own dropout stream, reproducibly
        torch.manual_seed(rank_seed(tc.seed, dist_info.rank))
    logger.info(
        "HistoPrism: %s parameters, %d genes, %d cancer types, %d train / %d val WSIs, %d process(es)",
        f"{n_parameters(model):,}",
        mcfg.n_genes,
        mcfg.n_cancer_types,
        n_train,
        n_val,
        dist_info.world,
    )
    return cfg, model


def _fit(cfg: RunConfig, dist_info, work: Path, t0: float) -> dict:
    """The training loop; the main rank writes into ``work`` (the run folder being built)."""
    tc = cfg.train
    cohort = Cohort(cfg.data)
    train_ids, val_ids = cohort.sample_ids("train"), cohort.sample_ids("val")
    if not train_ids:
        raise InputError(f"metadata {cfg.data.metadata} has no WSI with split 'train'")
    if not val_ids:
        logger.warning("no validation WSIs: early stopping is off and the last epoch is kept")
    cfg, model = _build_model(cfg, cohort, len(train_ids), len(val_ids), dist_info, train_ids[0])
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    group = tc.wsis_per_step * dist_info.world  # WSIs per optimiser step, all processes together
    steps_per_epoch = -(-len(train_ids) // group)
    sched = make_schedule(opt, tc, steps_per_epoch)
    scaler = make_scaler(tc, dist_info.device)
    history, best, best_epoch, stale = [], float("inf"), -1, 0
    ckpt_path = work / "checkpoint.pt"
    bar = Progress(tc.max_epochs, "epochs", logger)  # one line per epoch (or a bar on a terminal)
    for epoch in range(1, tc.max_epochs + 1):
        te = time.perf_counter()
        model.train()
        order = epoch_order(len(train_ids), tc.seed, epoch)
        loss_sum, n_seen, n_skipped = 0.0, 0, 0
        for start in range(0, len(order), group):  # each WSI exactly once an epoch
            mine = order[start : start + group][dist_info.rank :: dist_info.world]
            wsis = [cohort.load(train_ids[i]) for i in mine]
            s, n, skipped = train_step(model, opt, sched, scaler, wsis, cohort.cancer_types, tc, dist_info)
            loss_sum, n_seen, n_skipped = loss_sum + s, n_seen + n, n_skipped + skipped
        loss_sum, n_seen, n_skipped = _all_sum([loss_sum, n_seen, n_skipped], dist_info)
        if n_skipped:
            logger.warning("epoch %d: %d WSIs skipped (non-finite loss)", epoch, int(n_skipped))
        row = {"epoch": epoch, "train_mse": loss_sum / max(n_seen, 1), "val_mse": float("nan"),
               "wsis": int(n_seen), "skipped": int(n_skipped), "lr": opt.param_groups[0]["lr"]}  # fmt: skip
        if val_ids:
            s, n = evaluate(model, cohort, val_ids[dist_info.rank :: dist_info.world], dist_info.device)
            s, n = _all_sum([s, n], dist_info)
            row["val_mse"] = s / n
        row["seconds"] = time.perf_counter() - te
        history.append(row)
        improved = (not val_ids) or row["val_mse"] < best
        if improved:
            best, best_epoch, stale = (row["val_mse"] if val_ids else float("nan")), epoch, 0
            if dist_info.main:
                save_checkpoint(
                    ckpt_path,
                    model,
                    cohort.genes,
                    cohort.cancer_types,
                    cfg,
                    {"epoch": epoch, "val_mse": row["val_mse"]},
                )
        else:
            stale += 1
        if val_ids:
            bar.step(
                "epoch %d/%d: train MSE %.5f, val MSE %.5f (best %.5f at epoch %d), %.2f s",
                epoch, tc.max_epochs, row["train_mse"], row["val_mse"], best, best_epoch, row["seconds"],
            )  # fmt: skip
        else:  # no validation split: nothing to report but the training loss
            msg = "epoch %d/%d: train MSE %.5f, %.2f s"
            bar.step(msg, epoch, tc.max_epochs, row["train_mse"], row["seconds"])
        if val_ids and stale >= tc.patience:
            logger.info("early stop: no better validation MSE for %d epochs", tc.patience)
            break
    bar.close()
    summary = {
        "epochs": len(history),
        "best_epoch": best_epoch,
        "best_val_mse": best if val_ids else None,
        "n_parameters": n_parameters(model),
        "n_train_wsi": len(train_ids),
        "n_val_wsi": len(val_ids),
        "world_size": dist_info.world,
        "seconds": time.perf_counter() - t0,
        "seconds_per_epoch": float(np.median([r["seconds"] for r in history])),
        "checkpoint": str(Path(cfg.out) / "checkpoint.pt"),
    }
    if dist_info.main:
        _write_run_files(work, cfg, history, summary)
    return summary


def _write_run_files(out: Path, cfg: RunConfig, history: list[dict], summary: dict) -> None:
    import yaml

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(history[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(history)
    for name, text in (
        ("history.csv", buf.getvalue()),
        ("config.yml", yaml.safe_dump(cfg.to_dict(), sort_keys=False)),
        ("train_summary.json", dumps_json(summary)),
    ):
        with atomic_file(out / name) as tmp:
            tmp.write_text(text)


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[HistoPrism, dict]:
    """Load a checkpoint written by :func:`train` (``weights_only=True``).

    Returns
    -------
    model, checkpoint
        The model in eval mode, and the checkpoint dict (genes, cancer types, configs).
    """
    from .config import ModelConfig

    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:
        raise InputError(f"cannot read checkpoint {path}: {err}".splitlines()[0]) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InputError(
            f"{path} is not a gpc-bench HistoPrism checkpoint",
            "a published state dict is converted with 'gpc-bench model import-published'",
        )
    raw = ckpt.get("model_config")
    names = {f.name for f in dataclasses.fields(ModelConfig)}
    if not isinstance(raw, dict) or set(raw) - names:
        unknown = sorted(set(raw) - names) if isinstance(raw, dict) else raw
        raise InputError(
            f"checkpoint {path}: its model config has unknown key(s) {unknown}",
            f"written by another version of gpc-bench, or edited; known keys: {', '.join(sorted(names))}",
        )
    try:
        model = HistoPrism(ModelConfig(**raw))
        model.load_state_dict(ckpt["state_dict"])
    except (TypeError, ValueError, KeyError, RuntimeError) as err:
        raise InputError(f"checkpoint {path} does not fit its model config: {str(err)[:300]}") from None
    model.to(device).eval()
    return model, ckpt
