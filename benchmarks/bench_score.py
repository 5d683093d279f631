"""Benchmark `gpc-bench score` side by side with what a user would otherwise run.

Two shapes:

- ``--shape her2st``: ten real her2st sections (A1-A6, B1-B4 from ../shared: 3,211 spots x 12,950
  genes), log1p counts as truth and a smoothed-neighbour "model" as predictions, with the
  predictions' genes in another order;
- ``--shape paper`` (default): the paper's test split, 23 WSIs x 38,982 genes (Ensembl IDs), 2,000-4,000
  spots per WSI, written once (streaming) into a cache folder (about 20 GB). ``--wsis/--genes`` shrink it.

In one run it measures, alternating and repeated, each in a fresh process: the bare h5py read of
both matrices, the plain numpy scorer (benchmarks/plain_scorer.py, ~15 lines), ``gpc-bench score``,
and, with ``--previous DIR`` (a checkout of earlier code, e.g. ``git worktree add DIR REV``), the
previous ``score``. With ``--cold`` the same again with both files dropped from the page cache.
It reports the ratios, the time before the first WSI is read, the marginal cost per WSI against
reading it, and the peak RSS against one WSI's two matrices. It also times the PCC kernel against
a per-gene ``scipy.stats.pearsonr`` loop on one WSI in memory. ``--extras`` instead times ``score``
with each spot-level extra (``--activity`` mean-z / ulm / aucell, ``--spatial``, ``--domains``)
against plain ``score``; at the paper shape it first gives the truth a grid of spot coordinates.

    python benchmarks/bench_score.py --shape her2st --repeats 5
    python benchmarks/bench_score.py --repeats 3 --cold --previous /tmp/prev
    python benchmarks/bench_score.py --wsis 4 --genes 5000  # quick
    python benchmarks/bench_score.py --extras --repeats 1     # the spot-level extras
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
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


def evict(*paths: Path) -> None:
    """Drop the files' pages from the page cache (clean pages; no root needed)."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


BARE_READ = (
    "import sys, h5py, numpy as np\n"
    "for p in sys.argv[1:]:\n"
    "    with h5py.File(p, 'r') as f:\n"
    "        x = f['X']; buf = np.empty((min(x.shape[0], 4096), x.shape[1]), np.float32)\n"
    "        for r in range(0, x.shape[0], len(buf)):\n"
    "            n = min(len(buf), x.shape[0] - r); x.read_direct(buf, np.s_[r:r + n], np.s_[:n])\n"
)


def compare(d: Path, files: dict, n_wsi: int, repeats: int, cold: bool, previous: Path | None) -> dict:
    """Alternate the contenders (fresh processes) ``repeats`` times; timings on a small VM vary by
    up to 2x from run to run, so medians and every run are reported."""
    truth, pred, gmt = files["truth"], files["pred"], files["pathways"]
    score = [
        sys.executable,
        "-m",
        "gpc_bench",
        "-v",
        "score",
        str(pred),
        "--truth",
        str(truth),
        "--pathways",
        str(gmt),
        "--out",
        str(d / "run"),
        "--overwrite",
        "--no-checksum",
    ]
    contenders = {
        "bare_read": [sys.executable, "-c", BARE_READ, str(truth), str(pred)],
        "plain_numpy": [sys.executable, str(HERE / "plain_scorer.py"), str(truth), str(pred)],
        "score": score,
    }
    envs = {k: None for k in contenders}
    if previous is not None:
        contenders["score_previous"] = score[:3] + score[4:]  # the previous CLI: no stage timings
        envs["score_previous"] = {**os.environ, "PYTHONPATH": str(previous)}
    runs = {k: [] for k in contenders}
    peaks = {k: [] for k in contenders}
    stages = []
    for _ in range(repeats):
        for name, cmd in contenders.items():
            if cold:
                evict(truth, pred)
            # the previous code runs from its own folder: `python -m` puts the working directory first
            cwd = previous if name == "score_previous" else None
            wall, peak, err = timed_subprocess(cmd, envs[name], cwd)
            runs[name].append(wall)
            peaks[name].append(peak)
            if name == "score":
                stages.append(_stages(err))
    med = {k: float(np.median(v)) for k, v in runs.items()}
    out = {f"{k}_s": {"all": [round(t, 3) for t in v], "median": round(med[k], 3)} for k, v in runs.items()}
    out["score_over_plain"] = round(med["score"] / med["plain_numpy"], 2)
    out["score_over_bare_read"] = round(med["score"] / med["bare_read"], 2)
    if previous is not None:
        out["previous_over_plain"] = round(med["score_previous"] / med["plain_numpy"], 2)
        out["score_over_previous"] = round(med["score"] / med["score_previous"], 2)
    first = float(np.median([s["genes and pathways aligned"] for s in stages]))
    streamed = float(np.median([s["WSIs scored"] - s["genes and pathways aligned"] for s in stages]))
    out["before_first_wsi_s_in_score"] = round(first, 3)
    out["marginal_per_wsi_s"] = round(streamed / n_wsi, 4)
    out["bare_read_per_wsi_s"] = round(med["bare_read"] / n_wsi, 4)
    out["marginal_over_read_per_wsi"] = round(streamed / n_wsi / (med["bare_read"] / n_wsi), 2)
    out["peak_rss_gib"] = {k: round(max(v), 3) for k, v in peaks.items()}
    return out


def shards(d: Path, files: dict, n_shards: int = 3, repeats: int = 3, cold: bool = False) -> dict:
    """CPU seconds (user + system, of the child processes) of one ``score`` against ``n_shards``
    ``score --shard K/N`` processes plus ``merge``; the merged tables are checked to be the same.
    With ``cold``, both inputs are dropped from the page cache before each process (shards on
    separate machines read their WSIs from disk)."""
    import resource

    cli = [sys.executable, "-m", "gpc_bench", "-q"]
    inputs = [str(files["pred"]), "--truth", str(files["truth"]), "--pathways", str(files["pathways"])]
    base = [*cli, "score", *inputs, "--no-checksum", "--overwrite"]

    def cpu(cmds) -> float:
        used = 0.0
        for cmd in cmds:
            if cold and cmd is not merge:
                evict(files["truth"], files["pred"])
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            used += after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        return used

    parts = [d / f"part_{k}" for k in range(1, n_shards + 1)]
    sharded = [
        base + ["--shard", f"{k}/{n_shards}", "--out", str(parts[k - 1])] for k in range(1, n_shards + 1)
    ]
    merge = [*cli, "merge", *map(str, parts), "--out", str(d / "merged"), "--overwrite"]
    one, split = [], []
    for _ in range(repeats):
        one.append(cpu([base + ["--out", str(d / "run")]]))
        split.append(cpu([*sharded, merge]))
    tables = sorted(p.name for p in (d / "run").iterdir() if p.is_file() and p.name != "run_info.json")
    same = all((d / "run" / f).read_bytes() == (d / "merged" / f).read_bytes() for f in tables)
    return {
        "n_shards": n_shards,
        "cold": cold,
        "one_run_cpu_s": round(float(np.median(one)), 3),
        "shards_plus_merge_cpu_s": round(float(np.median(split)), 3),
        "shards_over_one": round(float(np.median(split) / np.median(one)), 2),
        "merged_tables_identical": same,
    }


def machinery(d: Path, files: dict, repeats: int = 3) -> dict:
    """What each speed device of ``score`` buys end to end: ``score`` with everything on against
    ``score`` with one device replaced by plain code (benchmarks/_without.py; the memory map by
    ``GPC_BENCH_MMAP=0``), fresh processes, alternated, page cache warm. The checksum thread is timed
    with checksums on and a fresh checksum cache per run (a first ``score`` of new files)."""
    import tempfile

    inputs = [str(files["pred"]), "--truth", str(files["truth"]), "--pathways", str(files["pathways"])]
    args = ["score", *inputs, "--out", str(d / "run_machinery"), "--overwrite"]
    runner = [sys.executable, str(HERE / "_without.py")]
    variants = {
        "all_on": (runner + ["--", *args, "--no-checksum"], {}),
        "without_mmap": (runner + ["--", *args, "--no-checksum"], {"GPC_BENCH_MMAP": "0"}),
        "pandas_tables": (runner + ["tables", "--", *args, "--no-checksum"], {}),
        "checksums_on_thread": (runner + ["--", *args], {"GPC_BENCH_CACHE": None}),
        "checksums_serial": (runner + ["checksum_thread", "--", *args], {"GPC_BENCH_CACHE": None}),
    }
    times = {k: [] for k in variants}
    for _ in range(repeats):
        for name, (cmd, extra) in variants.items():
            env = dict(os.environ)
            with tempfile.TemporaryDirectory() as cache:
                env.update({k: cache if v is None else v for k, v in extra.items()})
                times[name].append(timed_subprocess(cmd, env)[0])
    med = {k: float(np.median(v)) for k, v in times.items()}
    out = {f"{k}_s": {"all": [round(t, 3) for t in v], "median": round(med[k], 3)} for k, v in times.items()}
    # the share of the run without the device that the device saves
    saves = {
        "mmap": ("without_mmap", "all_on"),
        "arrow_tables": ("pandas_tables", "all_on"),
        "checksum_thread": ("checksums_serial", "checksums_on_thread"),
    }
    out["saves"] = {k: round(1 - med[on] / med[off], 3) for k, (off, on) in saves.items()}
    return out


def ensure_coordinates(truth: Path, sizes: list[int]) -> None:
    """Give a bench truth file spot coordinates (``obsm["spatial"]``: a square grid per WSI) when it
    has none, so that ``--spatial`` can be timed at the paper shape."""
    import anndata as ad

    with h5py.File(truth, "a") as f:
        if "obsm" in f and "spatial" in f["obsm"]:
            return
        xy = []
        for m in sizes:
            side = int(np.ceil(np.sqrt(m)))
            xy.append(np.column_stack([np.arange(m) % side, np.arange(m) // side]).astype(np.float64))
        if "obsm" not in f:
            g = f.create_group("obsm")
            g.attrs["encoding-type"], g.attrs["encoding-version"] = "dict", "0.1.0"
        ad.io.write_elem(f["obsm"], "spatial", np.concatenate(xy))


#: the spot-level extras timed by ``--extras``, alone and all together
EXTRAS = {
    "activity_mean_z": ["--activity"],
    "activity_ulm": ["--activity", "ulm"],
    "activity_aucell": ["--activity", "aucell"],
    "spatial": ["--spatial"],
    "domains_kmeans": ["--domains", "kmeans"],
    "domains_leiden": ["--domains", "leiden"],
    "all_mean_z": ["--activity", "--spatial", "--domains", "leiden"],
}


def extras(d: Path, files: dict, sizes: list[int], repeats: int = 1, only=None) -> dict:
    """``score`` with each spot-level extra on (``only``: those of :data:`EXTRAS` named) against plain
    ``score`` (GPC alone), fresh processes, alternated, page cache warm; the cost of each as a share
    of the plain run."""
    ensure_coordinates(files["truth"], sizes)
    inputs = [str(files["pred"]), "--truth", str(files["truth"]), "--pathways", str(files["pathways"])]
    base = [sys.executable, "-m", "gpc_bench", "score", *inputs, "--out", str(d / "run_extras"),
            "--overwrite",
            "--no-checksum"]  # fmt: skip
    chosen = {k: v for k, v in EXTRAS.items() if not only or k in only}
    variants = {"plain": base} | {k: base + v for k, v in chosen.items()}
    times = {k: [] for k in variants}
    peaks = {k: [] for k in variants}
    for _ in range(repeats):
        for name, cmd in variants.items():
            wall, peak, _ = timed_subprocess(cmd)
            times[name].append(wall)
            peaks[name].append(peak)
    med = {k: float(np.median(v)) for k, v in times.items()}
    out = {f"{k}_s": {"all": [round(t, 3) for t in v], "median": round(med[k], 3)} for k, v in times.items()}
    out["extra_cost"] = {k: round(med[k] / med["plain"] - 1, 3) for k in chosen}
    out["peak_rss_gib"] = {k: round(max(v), 3) for k, v in peaks.items()}
    return out


def _stages(log: str) -> dict:
    """Stage timings from ``score -v`` (``... at 0.123 s``)."""
    out = {}
    for line in log.splitlines():
        if line.endswith(" s") and " at " in line:
            what, _, t = line.removeprefix("gpc-bench: ").rpartition(" at ")
            out[what] = float(t.split()[0])
    return out


def timed_subprocess(cmd: list[str], env: dict | None = None, cwd=None) -> tuple[float, float, str]:
    """Wall time (s), peak RSS (GiB) and stderr of a child process.

    The peak is measured by GNU time (``/usr/bin/time -f %M``) around the child: a child forked from
    this (large) process would report this process's RSS as its own peak.
    """
    timer = ["/usr/bin/time", "-f", "PEAK_KB %M"] if Path("/usr/bin/time").exists() else []
    t = time.perf_counter()
    proc = subprocess.run(
        timer + cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed: {proc.stderr[-2000:]}")
    peak = float("nan")
    for line in proc.stderr.splitlines():
        if line.startswith("PEAK_KB "):
            peak = int(line.split()[1]) / 2**20
    return wall, peak, proc.stderr


def her2st_cohort(cache: Path, shared: Path) -> dict:
    """Ten her2st sections as truth.h5ad / pred.h5ad (predictions' genes in another order)."""
    import anndata as ad
    import pandas as pd

    d = cache / "her2st10"
    done = d / "done.json"
    if done.exists():
        return json.loads(done.read_text())
    d.mkdir(parents=True, exist_ok=True)
    sections = ["A1", "A2", "A3", "A4", "A5", "A6", "B1", "B2", "B3", "B4"]
    frames = []
    for s in sections:
        df = pd.read_csv(shared / "her2st" / "ST-cnts" / f"{s}.tsv.gz", sep="\t", index_col=0)
        frames.append((s, df.loc[:, ~df.columns.duplicated()]))
    genes = sorted(set.intersection(*(set(f.columns) for _, f in frames)))
    x = np.concatenate([np.log1p(f[genes].to_numpy(np.float32)) for _, f in frames])
    obs = pd.concat(
        [
            pd.DataFrame({"sample_id": s, "cancer_type": "HER2+" if s[0] == "B" else "LUMA"}, index=f.index)
            for s, f in frames
        ]
    )
    obs = obs.astype({"sample_id": "category", "cancer_type": "category"})
    truth = ad.AnnData(x, obs=obs, var=pd.DataFrame(index=genes))
    rng = np.random.default_rng(0)
    pred_x = (0.5 * x + 0.5 * np.roll(x, 1, axis=0) + rng.normal(0, 0.3, x.shape)).astype(np.float32)
    pred = ad.AnnData(pred_x, obs=obs, var=pd.DataFrame(index=genes))[:, rng.permutation(len(genes))].copy()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # spot names repeat across sections, as in real data
        truth.write_h5ad(d / "truth.h5ad")
        pred.write_h5ad(d / "pred.h5ad")
    from gpc_bench.io.gmt import default_collection_path

    sizes = obs.groupby("sample_id", observed=True).size().reindex(sections).tolist()
    info = {
        "dir": str(d),
        "n_spots": len(obs),
        "max_spots": max(sizes),
        "sizes": sizes,
        "genes": len(genes),
        "pathways": str(default_collection_path()),
    }
    done.write_text(json.dumps(info))
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=("paper", "her2st"), default="paper")
    ap.add_argument(
        "--shared", type=Path, default=HERE.parent.parent / "shared" / "data", help="../shared/data"
    )
    ap.add_argument("--wsis", type=int, default=23)
    ap.add_argument("--genes", type=int, default=38982)
    ap.add_argument("--spots", type=int, nargs=2, default=(2000, 4000))
    ap.add_argument("--cache", type=Path, default=HERE / ".cache")
    ap.add_argument("--pearsonr-genes", type=int, default=400, help="genes timed with pearsonr")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--repeats", type=int, default=3, help="repetitions of each contender")
    ap.add_argument("--layout", choices=("contiguous", "chunked"), default="contiguous", help="storage of X")
    ap.add_argument("--cold", action="store_true", help="also time with files evicted from the page cache")
    ap.add_argument("--previous", type=Path, help="checkout of earlier code to time side by side")
    ap.add_argument("--machinery", action="store_true", help="also time score with each speed device off")
    ap.add_argument(
        "--extras", nargs="*", choices=tuple(EXTRAS), default=None,
        help="only time score with these spot-level extras (none named: all) against plain score",
    )
    args = ap.parse_args()

    from scipy.stats import pearsonr

    from gpc_bench.metrics.pcc import column_moments, default_threads, kernel_name, pearson_from_moments

    if args.shape == "her2st":
        info = her2st_cohort(args.cache, args.shared)
        files = {
            "truth": Path(info["dir"]) / "truth.h5ad",
            "pred": Path(info["dir"]) / "pred.h5ad",
            "pathways": Path(info["pathways"]),
        }
        n_genes = info["genes"]
    else:
        info = write_cohort(args.cache, args.wsis, args.genes, tuple(args.spots), layout=args.layout)
        d = Path(info["dir"])
        files = {"truth": d / "truth.h5ad", "pred": d / "pred.h5ad", "pathways": d / "pathways.gmt"}
        n_genes = args.genes
    d = Path(info["dir"])
    sizes = info["sizes"]
    gb = lambda m: m * n_genes * 4 * 2 / 2**30  # noqa: E731 - two float32 matrices, GiB
    if args.extras is not None:  # the spot-level extras only
        for f in (files["truth"], files["pred"]):  # start warm
            bare_read(f, sizes)
        res = {"shape": {"name": args.shape, "wsis": len(sizes), "genes": n_genes, "spots": info["n_spots"]},
               "extras": extras(d, files, sizes, repeats=args.repeats, only=args.extras)}  # fmt: skip
        print(json.dumps(res, indent=1))
        if args.json:
            args.json.write_text(json.dumps(res, indent=1))
        return

    # 1. kernel vs pearsonr on the largest WSI, in memory
    k0 = int(np.argmax(sizes))
    r0 = int(np.sum(sizes[:k0]))
    with h5py.File(files["truth"]) as ft, h5py.File(files["pred"]) as fp:
        x = ft["X"][r0 : r0 + sizes[k0]]
        y = fp["X"][r0 : r0 + sizes[k0]]
    threads = default_threads()
    kernels = {}
    for name in ("numba", "numpy"):  # both kernels side by side on the same in-memory WSI
        if kernel_name(choice=name) != name:
            continue
        t = time.perf_counter()
        column_moments(x[:4], y[:4], threads=1, kernel=name)  # numba: load (or compile) the cached kernel
        warm = time.perf_counter() - t
        t = time.perf_counter()
        r, _ = pearson_from_moments(column_moments(x, y, threads=threads, kernel=name))
        kernels[name] = {"s": round(time.perf_counter() - t, 3), "warmup_s": round(warm, 3), "r": r}
    default = "numpy" if "numba" not in kernels else "numba"
    r = kernels[default]["r"]
    sample = np.random.default_rng(0).choice(x.shape[1], min(args.pearsonr_genes, x.shape[1]), replace=False)
    t = time.perf_counter()
    ref = [pearsonr(x[:, g].astype(np.float64), y[:, g].astype(np.float64))[0] for g in sample]
    t_loop = (time.perf_counter() - t) / len(sample) * x.shape[1]
    ok = np.isfinite(ref)
    max_err = float(np.nanmax(np.abs(np.asarray(ref)[ok] - r[sample][ok])))
    del x, y

    # 2. the contenders end to end, fresh processes, alternated; page cache warm (and cold)
    for f in (files["truth"], files["pred"]):  # start warm
        bare_read(f, sizes)
    warm = compare(d, files, len(sizes), args.repeats, cold=False, previous=args.previous)
    cold = (
        compare(d, files, len(sizes), args.repeats, cold=True, previous=args.previous) if args.cold else None
    )
    sharding = shards(d, files, repeats=args.repeats)
    sharding_cold = shards(d, files, repeats=args.repeats, cold=True) if args.cold else None
    devices = machinery(d, files, repeats=args.repeats) if args.machinery else None
    one = gb(info["max_spots"])
    res = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        "shape": {
            "name": args.shape,
            "wsis": len(sizes),
            "genes": n_genes,
            "spots": info["n_spots"],
            "max_spots": info["max_spots"],
            "file_gib": round(gb(info["n_spots"]), 3),
        },
        "kernels": {
            k: {
                **{m: v for m, v in kd.items() if m != "r"},
                "speedup_vs_pearsonr": round(t_loop / kd["s"], 1),
            }
            for k, kd in kernels.items()
        },
        "pearsonr_loop_s_largest_wsi": round(t_loop, 2),
        "max_abs_diff_vs_pearsonr": max_err,
        "kernel_threads": threads,
        "warm": warm,
        "shards": sharding,
        "shards_cold": sharding_cold,
        "machinery": devices,
        "cold": cold,
        "one_wsi_two_matrices_gib": round(one, 3),
        "score_peak_over_one_wsi": round(warm["peak_rss_gib"]["score"] / one, 2),
        "score_peak_over_one_wsi_cold": round(cold["peak_rss_gib"]["score"] / one, 2) if cold else None,
    }
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
