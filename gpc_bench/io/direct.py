"""Read a WSI's rows from disk with direct I/O (``O_DIRECT``), past the page cache.

A cohort that does not fit in memory gains nothing from the page cache: its first WSIs are
evicted before the next run needs them.  Reading it through the cache still costs a copy of
every byte and, once memory is full, page reclaim for every page read.  On the 2-core
development VM that was 17-42 s of system time for the 20.6 GiB benchmark cohort, against 10 s
for the disk itself with direct reads (docs/performance.md).  Direct I/O moves the bytes from
the disk into the run's own buffer with neither.

Only matrices stored raw (see :mod:`gpc_bench.io.mapped`) are read this way; a file system
that refuses ``O_DIRECT`` (tmpfs, some network mounts) makes :func:`read_rows` return None and
the caller reads through h5py.  ``GPC_BENCH_DIRECT_IO`` chooses: ``auto`` (the default: direct
reads only for WSIs that are not cached, and only when the cohort could not stay cached, see
:func:`decide`), ``1`` (whenever a WSI is not cached) or ``0`` (never).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .._errors import InputError
from ..metrics.pcc import RowMatrix
from .mapped import window

logger = logging.getLogger(__name__)

#: file offsets, lengths and buffer addresses of direct reads are multiples of this
ALIGN = 4096
#: ``auto`` reads directly when the cohort and the run's buffers exceed this share of the
#: memory available at the start (what could cache the cohort without reclaiming other memory)
CACHE_SHARE = 0.8

_ON, _OFF, _AUTO = ("1", "true", "yes", "on"), ("0", "false", "no", "off"), ("", "auto")


def setting() -> str:
    """``GPC_BENCH_DIRECT_IO`` as ``"auto"``, ``"on"`` or ``"off"``."""
    raw = os.environ.get("GPC_BENCH_DIRECT_IO", "").strip().lower()
    if raw in _AUTO:
        return "auto"
    if raw in _ON:
        return "on"
    if raw in _OFF:
        return "off"
    raise InputError(
        f"GPC_BENCH_DIRECT_IO={raw!r} is not understood",
        "use auto (the default), 1 (read uncached WSIs with direct I/O) or 0 (never)",
    )


def available_memory() -> int | None:
    """``MemAvailable`` from ``/proc/meminfo`` in bytes, or None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def decide(cohort_bytes: int, working_bytes: int) -> tuple[bool, str]:
    """Whether WSIs that are not in the page cache are read with direct I/O, and why.

    Parameters
    ----------
    cohort_bytes
        Bytes of both matrices over all WSIs of the run.
    working_bytes
        Memory the run itself holds at its peak (its read buffers).
    """
    mode = setting()
    if mode != "auto":
        return mode == "on", f"GPC_BENCH_DIRECT_IO={mode}"
    if getattr(os, "O_DIRECT", None) is None:
        return False, "no O_DIRECT on this system"
    avail = available_memory()
    if avail is None:
        return False, "available memory unknown"
    need = cohort_bytes + working_bytes
    sizes = f"cohort and buffers {need / 2**30:.1f} GiB, available memory {avail / 2**30:.1f} GiB"
    if need > CACHE_SHARE * avail:
        return True, f"auto: too large to stay cached ({sizes})"
    return False, f"auto: fits in the page cache ({sizes})"


def aligned_empty(nbytes: int) -> np.ndarray:
    """An uninitialised ``uint8`` buffer of ``nbytes`` whose address is a multiple of :data:`ALIGN`."""
    raw = np.empty(nbytes + ALIGN, dtype=np.uint8)
    skip = -raw.ctypes.data % ALIGN
    return raw[skip : skip + nbytes]


def span_bytes(offsets: np.ndarray, rows: np.ndarray, n_cols: int) -> int | None:
    """Size of the aligned buffer :func:`read_rows` needs for these rows (None: not readable so)."""
    win = window(offsets, rows, n_cols, ALIGN)
    if win is None:
        return None
    start, hi = win[0], win[1]
    return -(-(hi - start) // ALIGN) * ALIGN


def read_rows(
    path: str | Path, offsets: np.ndarray, rows: np.ndarray, n_cols: int, buf: np.ndarray
) -> RowMatrix | None:
    """Read the rows ``rows`` of a raw float32 matrix (row ``r`` at byte ``offsets[r]``) into ``buf``.

    ``buf`` is an :func:`aligned_empty` buffer of at least :func:`span_bytes` bytes; the returned
    :class:`RowMatrix` is a view of it, valid until ``buf`` is reused.  Returns None, having
    logged why, when the rows are spread out, the file system refuses direct I/O, or the file
    ends early (h5py then reads them, and reports a damaged file itself).
    """
    win = window(offsets, rows, n_cols, ALIGN)
    if win is None:
        return None
    start, hi, skew, rel = win
    stop = start + -(-(hi - start) // ALIGN) * ALIGN
    if buf.nbytes < stop - start or buf.ctypes.data % ALIGN:
        raise ValueError(f"need an aligned buffer of {stop - start} bytes, got {buf.nbytes}")
    flag = getattr(os, "O_DIRECT", None)
    if flag is None:
        return None
    view = memoryview(buf)[: stop - start]
    got = 0
    try:
        fd = os.open(path, os.O_RDONLY | flag)
        try:
            while got < hi - start:
                n = os.preadv(fd, [view[got:]], start + got)
                if n <= 0:
                    logger.debug("%s ends at byte %d, before the rows' end %d", path, start + got, hi)
                    return None
                got += n
        finally:
            os.close(fd)
    except OSError as err:  # EINVAL: no direct I/O here, or a stricter alignment than ALIGN
        logger.debug("direct read of %s failed (%s); reading through h5py", path, err)
        return None
    data = np.frombuffer(buf, dtype=np.float32, count=(hi - start - skew) // 4, offset=skew)
    return RowMatrix(data, rel, n_cols)
