"""What a user would otherwise write: gene PCC per WSI with h5py and numpy, ~15 lines.

    python benchmarks/plain_scorer.py truth.h5ad pred.h5ad

Reads obs/var with h5py, aligns spots by (sample_id, barcode) and genes by name, then per WSI reads
both matrices' rows (one slice when contiguous), centres, normalises and takes the column dot
products in float64. No pathways, no tables: the floor `gpc-bench score` is measured against.
"""

import sys

import h5py
import numpy as np


def frame(f):
    obs, var = f["obs"], f["var"]
    names = obs[obs.attrs["_index"]][()].astype(str)
    sid = obs["sample_id"]
    samples = sid["categories"][()].astype(str)[sid["codes"][()]]
    return names, samples, var[var.attrs["_index"]][()].astype(str)


def rows(x, idx):
    if len(idx) and idx[-1] - idx[0] + 1 == len(idx):
        return x[idx[0] : idx[-1] + 1]
    return x[np.sort(idx)][np.argsort(np.argsort(idx))]


with h5py.File(sys.argv[1], "r") as ft, h5py.File(sys.argv[2], "r") as fp:
    (nt, st, gt), (npr, sp, gp) = frame(ft), frame(fp)
    where = {g: i for i, g in enumerate(gt)}
    pc = np.array([i for i, g in enumerate(gp) if g in where])
    tc = np.array([where[g] for g in gp[pc]])
    spot = {(s, n): i for i, (s, n) in enumerate(zip(st, nt, strict=True))}
    r = {}
    for s in np.unique(sp):
        ip = np.flatnonzero(sp == s)
        it = np.array([spot[(s, n)] for n in npr[ip]])
        a = rows(ft["X"], it)[:, tc].astype(np.float64)
        b = rows(fp["X"], ip)[:, pc].astype(np.float64)
        a -= a.mean(0)
        b -= b.mean(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r[s] = (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))
print(len(r), float(np.nanmean(np.concatenate(list(r.values())))))
