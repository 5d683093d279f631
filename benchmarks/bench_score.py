"""Benchmark `gpc-bench score` on a cohort shaped like the paper's test split.

Default: 23 WSIs, 38,982 genes (Ensembl IDs, as the STPath panel), 2,000-4,000 spots per WSI,
written once (streaming) as two float32 .h5ad files into a cache folder (about 20 GB).  ``X`` is
stored contiguously, as ``AnnData.write_h5ad`` stores a dense matrix; ``--layout chunked`` writes
64-row chunks instead (the other layout ``score`` can memory-map).

In one run it measures, side by side:
1. the PCC kernel against a per-gene ``scipy.stats.pearsonr`` loop on the same in-memory WSI
   (a sample of genes is timed and extrapolated);
2. ``gpc-bench score`` end to end against the bare cost of reading both matrices (h5py slices);
3. peak memory (max RSS) of the score process against one WSI's two matrices.

With ``--cold`` the read-only/score pairs are repeated with both files dropped from the page
cache first (``posix_fadvise(DONTNEED)``), the situation of a cohort larger than memory, next to
the disk's floor (an ``O_DIRECT`` read of both matrices) and ``score`` with direct I/O off.

    python benchmarks/bench_score.py                       # the full shape (needs ~20 GB disk)
    python benchmarks/bench_score.py --wsis 4 --genes 5000  # quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent


def panel(n_genes: int) -> tuple[np.ndarray, np.ndarray]:
    from gpc_bench.genes import ensembl_to_symbol

    table = ensembl_to_symbol()
    ens = sorted(table)[:n_genes]
    ens += [f"ENSG{99000000000 + i:011d}" for i in range(n_genes - len(ens))]
    sym = [table.get(e, "") for e in ens]
    return np.array(ens, dtype=object), np.array(sym, dtype=object)


def write_cohort(
    cache: Path, n_wsi: int, n_genes: int, spots: tuple[int, int], seed: int = 0, layout: str = "contiguous"
) -> dict:
    """Write truth.h5ad and pred.h5ad with h5py, one WSI at a time (bounded memory)."""
    import anndata as ad
    import pandas as pd

    tag = f"w{n_wsi}_g{n_genes}_s{spots[0]}-{spots[1]}_seed{seed}_{layout}"
    d = cache / tag
    done = d / "done.json"
    if done.exists():
        return json.loads(done.read_text())
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = rng.integers(spots[0], spots[1] + 1, n_wsi)
    ens, sym = panel(n_genes)
    types = ["IDC", "COAD", "LUNG", "PRAD", "SKCM", "CCRCC", "HCC", "PAAD", "READ", "LYMPH_IDC"]
    obs = pd.DataFrame(
        {
            "sample_id": np.repeat([f"WSI{i:02d}" for i in range(n_wsi)], sizes),
            "cancer_type": np.repeat([types[i % len(types)] for i in range(n_wsi)], sizes),
        },
        index=[f"WSI{i:02d}_{k}" for i in range(n_wsi) for k in range(sizes[i])],
    )
    obs["sample_id"] = obs["sample_id"].astype("category")
    obs["cancer_type"] = obs["cancer_type"].astype("category")
    var = pd.DataFrame({"gene_symbol": sym}, index=ens)
    level = rng.gamma(0.6, 1.0, n_genes).astype(np.float32)  # gene mean in log1p space
    n = int(sizes.sum())
    for name in ("truth", "pred"):
        with h5py.File(d / f"{name}.h5ad", "w") as f:
            f.attrs["encoding-type"] = "anndata"
            f.attrs["encoding-version"] = "0.1.0"
            ad.io.write_elem(f, "obs", obs)
            ad.io.write_elem(f, "var", var)
            chunks = (64, n_genes) if layout == "chunked" else None
            f.create_dataset("X", shape=(n, n_genes), dtype="float32", chunks=chunks)
    with h5py.File(d / "truth.h5ad", "a") as ft, h5py.File(d / "pred.h5ad", "a") as fp:
        row = 0
        for i, m in enumerate(sizes):
            z = rng.standard_normal((m, n_genes), dtype=np.float32)
            truth = np.maximum(level + z * (0.3 + level), 0)
            ft["X"][row : row + m] = truth
            noise = rng.standard_normal((m, n_genes), dtype=np.float32)
            fp["X"][row : row + m] = 0.5 * truth + noise * 0.5 + level
            row += m
            print(f"  wrote WSI {i + 1}/{n_wsi} ({m} spots)", file=sys.stderr)
    gmt = d / "pathways.gmt"
    prng = np.random.default_rng(seed + 1)
    named = [s for s in sym if s]
    lines = [
        f"SET_{k}\tbench\t" + "\t".join(prng.choice(named, int(prng.integers(50, 101)), replace=False)) + "\n"
        for k in range(500)
    ]
    gmt.write_text("".join(lines))
    info = {"dir": str(d), "n_spots": n, "max_spots": int(sizes.max()), "sizes": sizes.tolist()}
    done.write_text(json.dumps(info))
    return info


def bare_read(path: Path, sizes: list[int]) -> None:
    """Read the matrix WSI by WSI into one reused buffer (no page faults after the first WSI)."""
    with h5py.File(path, "r") as f:
        buf = np.empty((max(sizes), f["X"].shape[1]), dtype=np.float32)
        row = 0
        for m in sizes:
            f["X"].read_direct(buf, np.s_[row : row + m], np.s_[:m])
            row += m


def bare_read_direct(path: Path, sizes: list[int], chunk: int = 64 << 20) -> None:
    """Read the matrix's bytes with O_DIRECT, 64 MiB at a time, into one reused aligned buffer:
    what the disk can deliver without the page cache (the floor for a cohort read from disk)."""
    with h5py.File(path, "r") as f:
        start, nbytes = f["X"].id.get_offset(), sum(sizes) * f["X"].shape[1] * 4
    align = 4096
    raw = np.empty(chunk + 2 * align, np.uint8)
    buf = memoryview(raw[-raw.ctypes.data % align :][: chunk + align])
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        pos, stop = start - start % align, start + nbytes
        while pos < stop:
            n = os.preadv(fd, [buf[: min(chunk + align, -(-(stop - pos) // align) * align)]], pos)
            if n <= 0:
                break
            pos += n
    finally:
        os.close(fd)


def evict(*paths: Path) -> None:
    """Drop the files' pages from the page cache (clean pages; no root needed)."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def read_vs_score(d: Path, sizes: list[int], cmd: list[str], repeats: int, cold: bool) -> dict:
    """Alternate read-only and score runs; timings on a small VM vary by up to 2x run to run.

    Cold, each repetition also times the disk's floor (an O_DIRECT read of both matrices) and
    ``score`` with direct I/O turned off (``GPC_BENCH_DIRECT_IO=0``: WSIs through the page cache).
    """
    files = (d / "truth.h5ad", d / "pred.h5ad")
    runs: dict[str, list[float]] = {"read_only": [], "score": []}
    if cold:
        runs |= {"read_only_direct": [], "score_no_direct_io": []}
    peaks, infos = [], {}

    def timed(name, fn):
        if cold:
            evict(*files)
        t = time.perf_counter()
        fn()
        runs[name].append(time.perf_counter() - t)

    def run_score(name, env=None):
        def go():
            peaks.append(timed_subprocess(cmd, env)[1])
            infos[name] = json.loads((d / "run" / "run_info.json").read_text())

        timed(name, go)

    for _ in range(repeats):
        timed("read_only", lambda: [bare_read(f, sizes) for f in files])
        run_score("score")
        if cold:
            timed("read_only_direct", lambda: [bare_read_direct(f, sizes) for f in files])
            run_score("score_no_direct_io", {**os.environ, "GPC_BENCH_DIRECT_IO": "0"})
    med = {k: float(np.median(v)) for k, v in runs.items()}
    out = {f"{k}_s": {"all": [round(t, 2) for t in v], "median": round(med[k], 2)} for k, v in runs.items()}
    out["score_over_read_medians"] = round(med["score"] / med["read_only"], 2)
    out["score_over_read_best"] = round(min(runs["score"]) / min(runs["read_only"]), 2)
    if cold:
        out["score_over_direct_read_medians"] = round(med["score"] / med["read_only_direct"], 2)
        out["score_no_direct_io_over_read_medians"] = round(med["score_no_direct_io"] / med["read_only"], 2)
    out["peak_rss_gib"] = round(max(peaks), 2)
    out["matrix_reads"] = {k: v.get("matrix_reads") for k, v in infos.items()}
    out["direct_io"] = infos["score"].get("direct_io")
    out["score_kernel"] = infos["score"].get("kernel")
    return out


def timed_subprocess(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall time (s) and peak RSS (GiB) of a child process."""
    t = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(cmd, check=True, env=env)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wsis", type=int, default=23)
    ap.add_argument("--genes", type=int, default=38982)
    ap.add_argument("--spots", type=int, nargs=2, default=(2000, 4000))
    ap.add_argument("--cache", type=Path, default=HERE / ".cache")
    ap.add_argument("--pearsonr-genes", type=int, default=400, help="genes timed with pearsonr")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--repeats", type=int, default=3, help="read-only / score repetitions")
    ap.add_argument("--layout", choices=("contiguous", "chunked"), default="contiguous", help="storage of X")
    ap.add_argument("--cold", action="store_true", help="also time with files evicted from the page cache")
    args = ap.parse_args()

    from scipy.stats import pearsonr

    from gpc_bench.metrics.pcc import column_moments, default_threads, kernel_name, pearson_from_moments

    info = write_cohort(args.cache, args.wsis, args.genes, tuple(args.spots), layout=args.layout)
    d = Path(info["dir"])
    sizes = info["sizes"]
    gb = lambda m: m * args.genes * 4 * 2 / 2**30  # noqa: E731 - two float32 matrices, GiB

    # 1. kernel vs pearsonr on WSI 0, in memory
    with h5py.File(d / "truth.h5ad") as ft, h5py.File(d / "pred.h5ad") as fp:
        x = ft["X"][: sizes[0]]
        y = fp["X"][: sizes[0]]
    threads = default_threads()
    kernels = {}
    for name in ("numba", "numpy"):  # both kernels side by side on the same in-memory WSI
        os.environ["GPC_BENCH_KERNEL"] = name
        if kernel_name() != name:
            continue
        t = time.perf_counter()
        column_moments(x[:4], y[:4], threads=1)  # numba: load (or compile) the cached kernel
        warm = time.perf_counter() - t
        t = time.perf_counter()
        r, _ = pearson_from_moments(column_moments(x, y, threads=threads))
        tk = time.perf_counter() - t
        t = time.perf_counter()
        pearson_from_moments(column_moments(x, y, threads=1))
        tk1 = time.perf_counter() - t
        # the truth file lists its genes in an unrelated order: the kernel gathers its rows first
        perm = np.random.default_rng(1).permutation(args.genes)
        xp = np.ascontiguousarray(x[:, np.argsort(perm)])  # xp[:, perm] == x
        t = time.perf_counter()
        rp, _ = pearson_from_moments(column_moments(xp, y, x_cols=perm, threads=threads))
        tkp = time.perf_counter() - t
        assert rp.tobytes() == r.tobytes()
        del xp
        kernels[name] = {
            "s": round(tk, 3),
            "s_1thread": round(tk1, 3),
            "s_truth_genes_shuffled": round(tkp, 3),
            "warmup_s": round(warm, 3),
            "r": r,
        }
    os.environ.pop("GPC_BENCH_KERNEL", None)
    default = kernel_name()
    r = kernels[default]["r"]
    t_kernel, t_kernel1 = kernels[default]["s"], kernels[default]["s_1thread"]
    sample = np.random.default_rng(0).choice(args.genes, args.pearsonr_genes, replace=False)
    t = time.perf_counter()
    ref = [pearsonr(x[:, g].astype(np.float64), y[:, g].astype(np.float64))[0] for g in sample]
    t_loop = (time.perf_counter() - t) / len(sample) * args.genes
    max_err = float(np.nanmax(np.abs(np.asarray(ref) - r[sample])))
    del x, y

    # 2. read-only vs end to end, alternated and repeated, page cache warm (and cold)
    out = d / "run"
    cmd = [sys.executable, "-m", "gpc_bench", "-q", "score", str(d / "pred.h5ad")]
    cmd += ["--truth", str(d / "truth.h5ad"), "--pathways", str(d / "pathways.gmt")]
    cmd += ["--out", str(out), "--overwrite", "--no-checksum"]
    for f in ("truth.h5ad", "pred.h5ad"):  # start warm
        bare_read(d / f, sizes)
    warm = read_vs_score(d, sizes, cmd, args.repeats, cold=False)
    with tempfile.TemporaryDirectory() as tmp:  # checksums: computed (empty cache), then reused
        env = {**os.environ, "GPC_BENCH_CACHE": tmp}
        t_score_ck, peak_ck = timed_subprocess(cmd[:-1], env)
        t_score_ck_cached, _ = timed_subprocess(cmd[:-1], env)
    cold = read_vs_score(d, sizes, cmd, args.repeats, cold=True) if args.cold else None
    peak = warm["peak_rss_gib"]
    res = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        "shape": {
            "layout": args.layout,
            "wsis": args.wsis,
            "genes": args.genes,
            "spots": info["n_spots"],
            "max_spots": info["max_spots"],
            "file_gib": round(gb(info["n_spots"]), 2),
        },
        "kernel": default,
        "kernels": {
            k: {**{m: v for m, v in d.items() if m != "r"}, "speedup_vs_pearsonr": round(t_loop / d["s"], 1)}
            for k, d in kernels.items()
        },
        "kernels_max_abs_diff": float(np.nanmax(np.abs(kernels["numba"]["r"] - kernels["numpy"]["r"])))
        if len(kernels) == 2
        else None,
        "kernel_s_wsi0": round(t_kernel, 3),
        "kernel_threads": threads,
        "kernel_1thread_s_wsi0": round(t_kernel1, 3),
        "pearsonr_loop_s_wsi0_extrapolated": round(t_loop, 2),
        "speedup_vs_pearsonr": round(t_loop / t_kernel, 1),
        "speedup_vs_pearsonr_1thread": round(t_loop / t_kernel1, 1),
        "max_abs_diff_vs_pearsonr": max_err,
        "warm": warm,
        "cold": cold,
        "score_with_checksum_s": round(t_score_ck, 2),
        "score_with_cached_checksum_s": round(t_score_ck_cached, 2),
        "peak_rss_gib": round(peak, 2),
        "peak_rss_with_checksum_gib": round(peak_ck, 2),
        "one_wsi_two_matrices_gib": round(gb(info["max_spots"]), 2),
        "peak_over_one_wsi": round(peak / gb(info["max_spots"]), 2),
        "blas_env": {
            k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        },
        "note": "no BLAS call in either kernel; env GPC_BENCH_THREADS: threads, GPC_BENCH_KERNEL: kernel",
    }
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
