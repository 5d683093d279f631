"""Zero-copy access to the rows of a dense float32 matrix stored raw in an ``.h5ad`` file.

anndata writes a dense ``X`` (and dense layers) as one contiguous, unfiltered HDF5 dataset,
so a row of spots is a run of bytes at a known file offset.  Mapping that range with ``mmap``
lets the PCC kernel read the page cache directly instead of copying every WSI into a buffer
first (h5py's ``read_direct``), which halves the memory traffic of ``score``.  Chunked
datasets qualify too when every chunk spans whole rows and no filter (compression, shuffle,
checksum) is applied.  Anything else returns ``None`` and the caller reads through h5py.

The layout is verified once per dataset: the first and last rows read through the mapping
must equal what h5py reads, or mapping is not used for that file.

This is an optional fast route of :class:`gpc_bench.io.stream.WsiReader`, taken with either
kernel on platforms whose ``mmap`` has ``MAP_SHARED`` and ``PROT_READ`` (not Windows), for
WSIs whose pages are mostly in the page cache, and unless ``GPC_BENCH_MMAP=0``. Any failure
falls back to the h5py route for the rest of the run.
"""

from __future__ import annotations

import logging
import math
import mmap
import os
from pathlib import Path

import h5py
import numpy as np

from ..metrics.pcc import RowMatrix

logger = logging.getLogger(__name__)

_F32 = np.dtype("float32")
#: a WSI is mapped only when its rows span at most this many times their own bytes
MAX_SPAN = 2.0


def available() -> bool:
    """Whether this platform can map files read-only and shared (Linux, macOS; not Windows)."""
    return hasattr(mmap, "MAP_SHARED") and hasattr(mmap, "PROT_READ")


def row_offsets(ds: h5py.Dataset) -> np.ndarray | None:
    """The file byte offset of every row of ``ds``, or None when rows are not stored raw and whole.

    Raw and whole: a 2-D native float32 dataset in a single-file HDF5 (default driver), no
    filters, and either contiguous storage or chunks that span full rows, all allocated.
    """
    if (
        ds.ndim != 2
        or ds.dtype != _F32  # also refuses non-native byte order
        or ds.file.driver != "sec2"
        or ds.external
        or ds.id.get_create_plist().get_nfilters() > 0
    ):
        return None
    n, g = ds.shape
    rowbytes = g * _F32.itemsize
    rows = np.arange(n, dtype=np.int64)
    if ds.chunks is None:
        base = ds.id.get_offset()
        return None if base is None else base + rows * rowbytes
    c = ds.chunks[0]
    if ds.chunks[1] != g:
        return None
    n_chunks = math.ceil(n / c)
    if ds.id.get_num_chunks() != n_chunks:  # some chunks never written (fill value)
        return None
    starts = np.full(n_chunks, -1, dtype=np.int64)

    def visit(info) -> None:
        if info.filter_mask == 0 and info.size == c * rowbytes and info.byte_offset is not None:
            starts[info.chunk_offset[0] // c] = info.byte_offset

    ds.id.chunk_iter(visit)
    if (starts < 0).any():
        return None
    return starts[rows // c] + (rows % c) * rowbytes


def map_rows(
    path: str | Path, offsets: np.ndarray, rows: np.ndarray, n_cols: int, *, populate: bool = True
) -> RowMatrix | None:
    """Map the rows ``rows`` of a matrix whose row ``r`` starts at byte ``offsets[r]`` of ``path``.

    Returns a :class:`RowMatrix` over a read-only mapping of the smallest page-aligned file range
    that holds the rows, or None when the rows are spread over more than :data:`MAX_SPAN` times
    their own size.  The mapping is released when the last array referring to it is freed.
    ``populate`` pre-faults the range (``MAP_POPULATE``): on a cold page cache this reads it from
    disk in the calling thread, which is how ``score`` prefetches the next WSI.
    """
    win = window(offsets, rows, n_cols, mmap.ALLOCATIONGRANULARITY)
    if win is None:
        return None
    start, hi, skew, rel = win
    flags = mmap.MAP_SHARED | (getattr(mmap, "MAP_POPULATE", 0) if populate else 0)  # populate: Linux
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), hi - start, flags=flags, prot=mmap.PROT_READ, offset=start)
    count = (hi - start - skew) // _F32.itemsize
    buf = np.frombuffer(mm, dtype=_F32, count=count, offset=skew)  # keeps ``mm`` alive until freed
    return RowMatrix(buf, rel, n_cols)


def window(
    offsets: np.ndarray, rows: np.ndarray, n_cols: int, align: int
) -> tuple[int, int, int, np.ndarray] | None:
    """Where the rows ``rows`` lie in the file, for a read or map that starts ``align``-aligned.

    Returns ``(start, hi, skew, rel)``: the aligned start of the range, its end (unaligned), the
    byte ``skew`` of the float32 grid from ``start`` (HDF5 does not align data to 4 bytes; an
    unaligned float32 array is read correctly by numpy and numba) and the element offset of each
    row from ``start + skew``.  None when the rows are spread out (:func:`byte_range`) or lie on
    differently aligned float32 grids (chunks).
    """
    rows = np.asarray(rows, dtype=np.int64)
    span = byte_range(offsets, rows, n_cols)
    if span is None:
        return None
    lo, hi = span
    start = lo - lo % align
    skew = (lo - start) % _F32.itemsize
    rel = offsets[rows] - start - skew
    if (rel % _F32.itemsize).any():
        return None
    return start, hi, skew, rel // _F32.itemsize


def byte_range(offsets: np.ndarray, rows: np.ndarray, n_cols: int) -> tuple[int, int] | None:
    """File range ``[lo, hi)`` of ``rows``, or None when they span more than :data:`MAX_SPAN`."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return None
    off = offsets[rows]
    lo, hi = int(off.min()), int(off.max()) + n_cols * _F32.itemsize
    return None if hi - lo > MAX_SPAN * len(rows) * n_cols * _F32.itemsize else (lo, hi)


#: map a WSI only when at least this fraction of its pages is in the page cache (docs/performance.md)
MIN_RESIDENT = 0.75


def resident_fraction(path: str | Path, start: int, stop: int, samples: int = 64) -> float:
    """Fraction of ``samples`` evenly spaced bytes of ``[start, stop)`` already in the page cache.

    Probed with ``preadv2(RWF_NOWAIT)``, which answers from the cache or fails at once.  The
    probe's file is marked for random access first, so that a miss reads in at most its own page
    rather than a whole read-ahead window.  Returns 1.0 where the probe is not available (not
    Linux, or a file system without non-blocking reads).
    """
    flag = getattr(os, "RWF_NOWAIT", None)
    if flag is None or not hasattr(os, "preadv") or stop <= start:
        return 1.0
    probe = bytearray(1)
    where = np.unique(np.linspace(start, stop - 1, num=samples).astype(np.int64)).tolist()
    fd = os.open(path, os.O_RDONLY)
    try:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        hits = 0
        for offset in where:
            try:
                hits += os.preadv(fd, [probe], offset, flag) == 1
            except BlockingIOError:
                continue
            except OSError:  # EOPNOTSUPP, EINVAL: this file system cannot tell
                return 1.0
    finally:
        os.close(fd)
    return hits / len(where)


def verified_offsets(ds: h5py.Dataset, path: str | Path) -> np.ndarray | None:
    """:func:`row_offsets`, checked: the first and last rows must read the same both ways."""
    try:
        offsets = row_offsets(ds)
    except (AttributeError, RuntimeError, ValueError, OSError) as err:  # old HDF5, odd storage
        logger.debug("%s: row layout not readable (%s); reading through h5py", path, err)
        return None
    if offsets is None or len(offsets) == 0:
        return None
    probe = np.array([0, len(offsets) - 1], dtype=np.int64)
    mapped = map_rows(path, offsets, probe[:1], ds.shape[1], populate=False)
    last = map_rows(path, offsets, probe[1:], ds.shape[1], populate=False)
    ok = (
        mapped is not None
        and last is not None
        and np.array_equal(mapped.rows().view(np.uint32), ds[:1].view(np.uint32))
        and np.array_equal(last.rows().view(np.uint32), ds[-1:].view(np.uint32))
    )
    if not ok:
        logger.warning("%s: mapped rows differ from h5py's; reading through h5py", path)
        return None
    return offsets
