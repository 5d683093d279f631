"""Training: AdamW, gradient clipping, one WSI per step, early stopping on validation MSE.

Runs in one process, or under ``torchrun`` with DistributedDataParallel (gloo on CPU, NCCL on GPUs):
WSIs are sharded by a ``DistributedSampler``, gradients are averaged across processes, and only rank
0 writes. With ``wsis_per_step = k`` in one process the gradients of the k WSIs that k processes
would take in one step are averaged instead, so the two give the same model (tested).
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

import numpy as np
import torch

from gpc_bench._errors import InputError
from gpc_bench._progress import Progress
from gpc_bench.io.runfolder import atomic_file, dumps_json

from .config import RunConfig
from .data import Cohort, Wsi, onehot
from .model import HistoPrism, masked_mse, n_parameters

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


def seed_all(seed: int) -> None:
    """Seed torch (the only random source of training) and ask it for deterministic kernels."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def evaluate(model: HistoPrism, cohort: Cohort, ids: list[str], device) -> tuple[float, int]:
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


def _fit(cfg: RunConfig, dist_info, work: Path, t0: float) -> dict:
    """The training loop; the main rank writes into ``work`` (the run folder being built)."""
    tc = cfg.train
    cohort = Cohort(cfg.data)
    train_ids, val_ids = cohort.sample_ids("train"), cohort.sample_ids("val")
    if not train_ids:
        raise InputError(f"metadata {cfg.data.metadata} has no WSI with split 'train'")
    if not val_ids:
        logger.warning("no validation WSIs: early stopping is off and the last epoch is kept")
    first = cohort.load(train_ids[0])
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
    model = HistoPrism(mcfg).to(dist_info.device)
    net = model
    if dist_info.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model)
    logger.info(
        "HistoPrism: %s parameters, %d genes, %d cancer types, %d train / %d val WSIs, %d process(es)",
        f"{n_parameters(model):,}",
        mcfg.n_genes,
        mcfg.n_cancer_types,
        len(train_ids),
        len(val_ids),
        dist_info.world,
    )
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(
        range(len(train_ids)), num_replicas=dist_info.world, rank=dist_info.rank, shuffle=True, seed=tc.seed
    )
    history, best, best_epoch, stale = [], float("inf"), -1, 0
    ckpt_path = work / "checkpoint.pt"
    bar = Progress(tc.max_epochs, "epochs", logger)  # one line per epoch (or a bar on a terminal)
    for epoch in range(1, tc.max_epochs + 1):
        te = time.perf_counter()
        model.train()
        sampler.set_epoch(epoch)
        order = list(sampler)
        k = tc.wsis_per_step
        loss_sum, n_seen = 0.0, 0
        for start in range(0, len(order), k):
            group = order[start : start + k]
            opt.zero_grad(set_to_none=True)
            for j, idx in enumerate(group):
                wsi = cohort.load(train_ids[idx])
                sync = net.no_sync() if (net is not model and j < len(group) - 1) else nullcontext()
                with sync:
                    loss = masked_mse(
                        net(*_tensors(wsi, cohort.cancer_types, dist_info.device)),
                        torch.from_numpy(wsi.target).to(dist_info.device),
                    )
                    (loss / len(group)).backward()
                loss_sum += float(loss.detach())
                n_seen += 1
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            opt.step()
        loss_sum, n_seen = _all_sum([loss_sum, n_seen], dist_info)
        row = {"epoch": epoch, "train_mse": loss_sum / n_seen, "val_mse": float("nan")}
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
