"""Stream the WSIs of a run: the next piece is read on a thread while the current one is scored.

A piece is a WSI, or a run of its rows when the WSI is read from disk with direct I/O: then it
arrives in row chunks of about :data:`CHUNK_BYTES` per matrix, through four small reused
buffers, instead of through two whole-WSI buffer pairs.  Each matrix of a WSI comes one of four
ways, chosen per WSI and file and counted once per WSI and file in ``run_info.json``
(``matrix_reads``):

``mmap``
    Stored raw and at least :data:`~gpc_bench.io.mapped.MIN_RESIDENT` in the page cache: mapped,
    no copy.  A WSI that is only partly cached is pre-faulted on the reader thread
    (``MAP_POPULATE``), so that the rest comes from disk there; a fully cached one is faulted in
    by the kernel threads as they read it, which costs less (fault-around maps 16 pages per fault).
``direct``
    Stored raw, not cached, and the cohort too large to stay cached
    (:func:`gpc_bench.io.direct.decide`): read past the page cache, chunk by chunk.
``h5py_not_cached``
    Stored raw, not cached, the cohort small enough to cache: one large h5py read, which leaves
    the WSI in the page cache for the next run.  Counted under ``h5py`` too.
``h5py``
    Everything else (sparse, compressed, in-memory AnnData, the numpy kernel, spots of the two
    files in different orders): h5py reads into two reused whole-WSI buffers.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import direct as _direct
from .mapped import MAX_SPAN, MIN_RESIDENT, advise, resident_fraction

logger = logging.getLogger(__name__)

#: bytes per matrix in a row chunk of a directly read WSI (64 MiB: 430 spots of 38,982 genes)
CHUNK_BYTES = 64 << 20


@dataclass
class Piece:
    """Rows ``r0:r1`` of WSI ``k`` (``wsi``), truth ``x`` and predictions ``y``: arrays or
    :class:`~gpc_bench.metrics.pcc.RowMatrix`, valid until the next piece is requested."""

    k: int
    wsi: object
    r0: int
    r1: int
    x: object
    y: object

    @property
    def first(self) -> bool:
        return self.r0 == 0

    @property
    def last(self) -> bool:
        return self.r1 == self.wsi.n_spots


class WsiReader:
    """Read the WSIs ``wsis`` of two sources, one piece ahead of the consumer.

    The first piece starts reading at construction, so that it overlaps whatever the caller
    does before iterating (gene alignment, pathway loading).  Iterate to get :class:`Piece`
    objects, WSI after WSI and row run after row run.  Call :meth:`close` (or use ``with``)
    when done or on error.

    Parameters
    ----------
    pred, truth
        Sources (:func:`gpc_bench.io.h5ad.open_source`); ``truth`` may be ``pred``.
    truth_layer
        Layer of ``truth`` holding the measured values, or None for ``X``.
    wsis
        Aligned WSIs (:func:`gpc_bench.io.align.align_spots`).
    mapped
        Whether raw matrices may be mapped or read directly (the numba kernel reads those forms;
        the numpy kernel wants 2-D arrays).
    direct
        Whether uncached raw matrices are read with direct I/O.
    """

    def __init__(self, pred, truth, truth_layer, wsis, *, mapped: bool, direct: bool) -> None:
        self.pred, self.truth, self.truth_layer, self.wsis = pred, truth, truth_layer, wsis
        self.mapped, self.direct = mapped, mapped and direct
        self.counts = {"mmap": 0, "direct": 0, "h5py": 0, "h5py_not_cached": 0}
        self._n_max = max((w.n_spots for w in wsis), default=0)
        n_vars = max(pred.n_vars, truth.n_vars, 1)
        self.chunk_rows = max(1, CHUNK_BYTES // (4 * n_vars))
        self._arrays: dict[tuple[int, int], np.ndarray] = {}
        self._aligned: dict[tuple[int, int], np.ndarray] = {}
        self._k, self._plan, self._seq = -1, None, 0
        self._io = ThreadPoolExecutor(1, thread_name_prefix="gpc-bench-read")
        self._next = self._io.submit(self._read_next)

    def _sources(self, w):
        return ((0, self.truth, w.truth_rows, self.truth_layer), (1, self.pred, w.pred_rows, None))

    def _routes(self, w) -> list[tuple[str, float]]:
        """How each file of WSI ``w`` is read, with its resident fraction: the page cache is probed
        once per WSI and file.  ``direct`` only when the other file is ``direct`` or ``mmap`` too
        (the two are read in the same row chunks) and every chunk's rows lie close together."""
        routes = []
        for _, src, rows, layer in self._sources(w):
            span = src.byte_range(rows, layer) if self.mapped else None
            if span is None:
                routes.append(("h5py", 0.0))
                continue
            resident = resident_fraction(src.path, *span)
            starts = range(0, w.n_spots, self.chunk_rows)
            if resident >= MIN_RESIDENT:
                routes.append(("mmap", resident))
            elif self.direct and all(src.direct_bytes(rows[r : r + self.chunk_rows], layer) for r in starts):
                routes.append(("direct", resident))
            else:
                routes.append(("h5py_not_cached", resident))  # from disk, one large read beats page faults
        if any(how.startswith("h5py") for how, _ in routes):
            routes = [("h5py_not_cached", f) if how == "direct" else (how, f) for how, f in routes]
        return routes

    def _whole(self, k: int, which: int, src, rows, layer, how: str, resident: float):
        if how == "mmap":
            block = src.map_rows(rows, layer, populate=resident < 1.0)
        else:
            if how == "h5py_not_cached":
                self.counts[how] += 1
            if (k % 2, which) not in self._arrays:
                self._arrays[k % 2, which] = np.empty((self._n_max, src.n_vars), np.float32)
            block, how = src.read_rows(rows, layer, out=self._arrays[k % 2, which]), "h5py"
        self.counts[how] += 1
        return block

    def _chunk(self, which: int, src, rows, layer, mapping, r0: int, r1: int):
        if mapping is not None:  # cached file next to an uncached one: rows of its mapping
            return type(mapping)(mapping.buf, mapping.offsets[r0:r1], mapping.n_cols)
        slot = (self._seq % 2, which)
        if slot not in self._aligned:
            n_bytes = int(MAX_SPAN * self.chunk_rows * 4 * src.n_vars) + 2 * _direct.ALIGN
            self._aligned[slot] = _direct.aligned_empty(n_bytes)
        buf = self._aligned[slot]
        block = src.read_rows_direct(rows[r0:r1], layer, buf)
        if block is None:  # refused (file system) or short (damaged file): h5py, which says why
            if which not in self._plan["h5py"]:
                self._plan["h5py"].add(which)
                self.counts["direct"] -= 1
                self.counts["h5py"] += 1
            if self.direct:
                logger.info("%s: direct I/O refused; reading through h5py from here on", src.path)
                self.direct = False  # the WSIs after this one are read whole
            view = np.frombuffer(buf, np.float32, count=(r1 - r0) * src.n_vars).reshape(r1 - r0, src.n_vars)
            block = src.read_rows(rows[r0:r1], layer, out=view)
        return block

    # -- the reader thread -------------------------------------------------------------------
    def _read_next(self) -> Piece | None:
        """Read the piece after the last one (runs on the reader thread, one call at a time)."""
        plan = self._plan
        if plan is None or plan["r1"] == self.wsis[self._k].n_spots:  # on to the next WSI
            self._k += 1
            if self._k == len(self.wsis):
                return None
            k, w = self._k, self.wsis[self._k]
            routes = self._routes(w)
            if not any(how == "direct" for how, _ in routes):
                if self.mapped and not self.direct and k + 1 < len(self.wsis):
                    self.hint(k + 1)
                self._plan = {"r1": w.n_spots}
                x, y = (
                    self._whole(k, i, src, rows, layer, *route)
                    for (i, src, rows, layer), route in zip(self._sources(w), routes, strict=True)
                )
                return Piece(k, w, 0, w.n_spots, x, y)
            mappings = []  # per file: the WSI's mapping when cached, else None (direct chunks)
            for (_, src, rows, layer), (how, resident) in zip(self._sources(w), routes, strict=True):
                self.counts[how] += 1
                mappings.append(src.map_rows(rows, layer, populate=resident < 1.0) if how == "mmap" else None)
            plan = self._plan = {"mappings": mappings, "r1": 0, "h5py": set()}
        k, w = self._k, self.wsis[self._k]
        r0 = plan["r1"]
        r1 = plan["r1"] = min(w.n_spots, r0 + self.chunk_rows)
        x, y = (
            self._chunk(i, src, rows, layer, mapping, r0, r1)
            for (i, src, rows, layer), mapping in zip(self._sources(w), plan["mappings"], strict=True)
        )
        self._seq += 1
        return Piece(k, w, r0, r1, x, y)

    def hint(self, k: int) -> None:
        """Ask the OS to start reading WSI ``k``'s matrices into the page cache
        (``posix_fadvise(WILLNEED)``): a hint only, which holds no memory and makes no h5py call;
        nothing for matrices not stored raw; failures are ignored."""
        for _, src, rows, layer in self._sources(self.wsis[k]):
            span = src.byte_range(rows, layer)
            if span is None:
                continue
            try:
                advise(src.path, *span)
            except OSError as err:  # a failed hint must not fail the run
                logger.debug("read-ahead hint for %s failed: %s", src.path, err)

    def __iter__(self):
        while True:
            piece = self._next.result()
            if piece is None:
                self._next = None
                return
            self._next = self._io.submit(self._read_next)
            yield piece
            del piece

    def close(self) -> None:
        """Stop reading ahead (a read in progress finishes first) and release the thread."""
        if self._next is not None:
            self._next.cancel()
            self._next = None
        self._io.shutdown(wait=True)

    def __enter__(self) -> WsiReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
