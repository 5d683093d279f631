"""Efficiency of the reference HistoPrism forward pass on CPU: time, peak memory and FLOPs vs N.

For N = 256, 1,024, 4,096 and 16,384 patches (D_img = 1,024, D_gene = 38,982, the paper's sizes):

- wall time: median of repeats of one forward pass (eval mode, no grad; PyTorch's fast path and its
  CPU flash attention, as a user gets them), each N in a fresh process;
- peak memory: the growth of the process's peak RSS during the forward passes (Linux/macOS);
- FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` on meta tensors with the math attention
  kernel, so the N^2 attention products are counted (the CPU flash kernel is not counted by it).

It prints the log-log slope of each against N, splits the FLOPs into the part linear in N and the
self-attention part quadratic in N, and says where the second overtakes the first. It also reports
the parameter count and the training time per epoch on the synthetic cohort.

    python benchmarks/bench_model.py                # everything, about 3 minutes on 2 cores
    python benchmarks/bench_model.py --sizes 256 1024 --no-train
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()


def _rss_bytes() -> int:
    """Current resident set size (Linux: /proc; elsewhere the peak so far, an upper bound)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:
        return _peak_bytes()


def _peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _model(img_dim: int, genes: int, device: str = "cpu"):
    import torch

    from gpc_bench.baselines.histoprism.config import ModelConfig
    from gpc_bench.baselines.histoprism.model import HistoPrism

    torch.manual_seed(0)
    with torch.device(device):
        return HistoPrism(ModelConfig(img_dim=img_dim, n_genes=genes, n_cancer_types=29)).eval()


def one_size(n: int, img_dim: int, genes: int, repeats: int, fastpath: bool = False) -> dict:
    """Time and peak memory of forward passes at one N (run in its own process).

    ``fastpath``: let the encoder take PyTorch's fused fast path (what the model avoids) instead.
    """
    import contextlib

    import torch

    from gpc_bench.baselines.histoprism import model as model_mod

    if fastpath:
        model_mod._sdpa_encoder = contextlib.nullcontext
    model = _model(img_dim, genes)
    emb = torch.randn(n, img_dim)
    onco = torch.zeros(29)
    onco[0] = 1.0
    times = []
    with torch.no_grad():
        before = _rss_bytes()
        for _ in range(repeats + 1):  # the first pass warms up allocators and kernels
            t = time.perf_counter()
            out = model(emb, onco)
            times.append(time.perf_counter() - t)
            del out
        peak = _peak_bytes()
    return {
        "n": n,
        "seconds": statistics.median(times[1:]),
        "seconds_all": times,
        "peak_bytes": max(peak - before, 0),
        "output_bytes": n * genes * 4,
        "threads": torch.get_num_threads(),
    }


def flops(n: int, img_dim: int, genes: int) -> dict:
    """FLOPs of one forward pass, total and by part (meta tensors: nothing is computed)."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    torch.backends.mha.set_fastpath_enabled(False)  # the fused fast path hides its matmuls
    model = _model(img_dim, genes, device="meta")
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        model(torch.empty(n, img_dim, device="meta"), torch.empty(29, device="meta"))
    by = counter.get_flop_counts()

    def part(name: str) -> int:
        return int(sum(by.get(name, {}).values()))

    attn = int(by.get("HistoPrism.transformer", {}).get(torch.ops.aten.bmm, 0))
    return {
        "n": n,
        "total": int(counter.get_total_flops()),
        "self_attention_scores": attn,  # QK^T and AV of the encoder: quadratic in N
        "gene_head": part("HistoPrism.gene_regression_head"),
        "encoder": part("HistoPrism.transformer"),
        "conditioning": part("HistoPrism.conditioner") + part("HistoPrism.onco_embedder"),
    }


def slope(x, y) -> float:
    """Least-squares slope of log y on log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def train_epoch_seconds(epochs: int = 3) -> dict:
    """Median training time per epoch on the default synthetic cohort (paper model, 1,024-d embeddings)."""
    import logging

    from gpc_bench.baselines.histoprism.config import load_config
    from gpc_bench.baselines.histoprism.train import train
    from gpc_bench.synth import make_cohort, write_model_inputs

    logging.getLogger("gpc_bench").setLevel(logging.WARNING)
    cohort = make_cohort()
    with tempfile.TemporaryDirectory() as d:
        cfg = write_model_inputs(cohort, d, dim=1024, train={"max_epochs": epochs, "patience": epochs})
        s = train(load_config(cfg), device="cpu")
    return {
        "wsis_train": s["n_train_wsi"],
        "wsis_val": s["n_val_wsi"],
        "genes": cohort.truth.n_vars,
        "spots": int(cohort.truth.n_obs),
        "seconds_per_epoch": s["seconds_per_epoch"],
        "n_parameters": s["n_parameters"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096, 16384])
    ap.add_argument("--img-dim", type=int, default=1024)
    ap.add_argument("--genes", type=int, default=38982)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-train", action="store_true", help="Skip the training-epoch timing.")
    ap.add_argument("--json", type=Path, help="Also write the results here.")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--fastpath", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument(
        "--compare-fastpath",
        type=int,
        nargs="*",
        default=[4096, 16384],
        help="Sizes also timed with PyTorch's fused encoder fast path, side by side.",
    )
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one, args.img_dim, args.genes, args.repeats, args.fastpath)))
        return

    import torch

    from gpc_bench.baselines.histoprism.model import n_parameters

    res = {"torch": torch.__version__, "threads": torch.get_num_threads(), "sizes": [], "flops": []}
    res["n_parameters"] = n_parameters(_model(args.img_dim, args.genes, device="meta"))

    def run_one(n: int, fastpath: bool = False) -> dict:
        cmd = [
            sys.executable,
            str(HERE),
            "--one",
            str(n),
            "--img-dim",
            str(args.img_dim),
            "--genes",
            str(args.genes),
            "--repeats",
            str(args.repeats),
        ] + (["--fastpath"] if fastpath else [])
        return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)

    res["fastpath"] = []
    for n in args.sizes:
        r = run_one(n)
        res["sizes"].append(r)
        res["flops"].append(flops(n, args.img_dim, args.genes))
        print(
            f"N={n:>6}: {r['seconds']:8.3f} s  peak +{r['peak_bytes'] / 2**30:6.2f} GiB  "
            f"{res['flops'][-1]['total'] / 1e9:9.1f} GFLOP",
            flush=True,
        )
        if n in args.compare_fastpath:
            fp = run_one(n, fastpath=True)
            res["fastpath"].append(fp)
            print(f"{'':>8}  {fp['seconds']:8.3f} s  peak +{fp['peak_bytes'] / 2**30:6.2f} GiB  (fast path)")
    ns = [r["n"] for r in res["sizes"]]
    fl = res["flops"]
    # total FLOPs = a N + b N^2: b from the attention products, a from the rest (exactly linear)
    b = fl[0]["self_attention_scores"] / ns[0] ** 2
    a = (fl[0]["total"] - fl[0]["self_attention_scores"]) / ns[0]
    res["flops_model"] = {"linear_per_patch": a, "quadratic_per_patch2": b, "crossover_n": a / b}
    res["slopes"] = {
        "time": slope(ns, [r["seconds"] for r in res["sizes"]]),
        "memory": slope(ns, [r["peak_bytes"] for r in res["sizes"]]),
        "flops": slope(ns, [f["total"] for f in fl]),
    }
    res["segment_slopes"] = {
        key: [slope(ns[i : i + 2], vals[i : i + 2]) for i in range(len(ns) - 1)]
        for key, vals in (
            ("time", [r["seconds"] for r in res["sizes"]]),
            ("memory", [r["peak_bytes"] for r in res["sizes"]]),
            ("flops", [f["total"] for f in fl]),
        )
    }
    if not args.no_train:
        res["training"] = train_epoch_seconds()
    print(f"\nparameters: {res['n_parameters']:,}")
    print(f"FLOPs = {a / 1e6:.2f}e6 N + {b:.0f} N^2: the N^2 term overtakes at N = {a / b:,.0f}")
    print("log-log slopes over all sizes:", {k: round(v, 3) for k, v in res["slopes"].items()})
    print(
        "between consecutive sizes:", {k: [round(x, 3) for x in v] for k, v in res["segment_slopes"].items()}
    )
    for f in fl:
        print(
            f"  N={f['n']:>6}: attention scores {f['self_attention_scores'] / f['total']:6.1%} of FLOPs, "
            f"gene head {f['gene_head'] / f['total']:6.1%}"
        )
    if "training" in res:
        t = res["training"]
        print(
            f"training: {t['seconds_per_epoch']:.2f} s/epoch ({t['wsis_train']} WSIs, {t['genes']} genes, "
            f"{t['n_parameters']:,} parameters)"
        )
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
