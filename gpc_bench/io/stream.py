"""Stream the WSIs of a run in row blocks.

The route that works wherever h5py works (Linux, macOS, Windows, network file systems): each WSI's
rows are read with h5py (:meth:`~gpc_bench.io.h5ad.H5adSource.read_rows`, sorted runs, any spot
order) in blocks of at most :data:`BLOCK_BYTES` per matrix, into one reused pair of buffers, when
the consumer asks for them. Memory is bounded by the block size, whatever the WSI size. (Reading
the next block on a thread while one is scored saved 0.7-1.2% end to end, so it was removed:
docs/performance.md.)

One optional fast route (``mapped``): a WSI whose two matrices are stored raw and mostly in the
page cache is mapped instead of copied, and the kernel reads the page cache in place
(:mod:`gpc_bench.io.mapped`). It is taken only where the platform can map files, and any failure
turns it off for the rest of the run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .align import Wsi

logger = logging.getLogger(__name__)

#: bytes per matrix in a row block (64 MiB: 430 spots of 38,982 genes); a WSI smaller than this
#: is one block
BLOCK_BYTES = 64 << 20


@dataclass
class Piece:
    """Rows ``r0:r1`` of WSI ``k`` (``wsi``): truth ``x`` and predictions ``y`` as float32 arrays
    (or, on the mapped route, :class:`~gpc_bench.metrics.pcc.RowMatrix` over the page cache),
    valid until the next piece is requested."""

    k: int
    wsi: Wsi
    r0: int
    r1: int
    x: np.ndarray
    y: np.ndarray

    @property
    def first(self) -> bool:
        return self.r0 == 0

    @property
    def last(self) -> bool:
        return self.r1 == self.wsi.n_spots


class WsiReader:
    """Read the WSIs ``wsis`` of two sources block by block.

    Iterate to get :class:`Piece` objects, WSI after WSI and block after block; a piece is valid
    until the next one is requested. Call :meth:`close` (or use ``with``) when done or on error.

    Parameters
    ----------
    pred, truth
        Sources (:func:`gpc_bench.io.h5ad.open_source`); ``truth`` may be ``pred``.
    truth_layer
        Layer of ``truth`` holding the measured values, or None for ``X``.
    wsis
        Aligned WSIs (:func:`gpc_bench.io.align.align_spots`).
    block_bytes
        Bytes per matrix in a block (rows are never split).
    """

    def __init__(
        self, pred, truth, truth_layer, wsis, *, block_bytes: int = BLOCK_BYTES, mapped: bool = False
    ) -> None:
        self.pred, self.truth, self.truth_layer, self.wsis = pred, truth, truth_layer, wsis
        n_vars = max(pred.n_vars, truth.n_vars, 1)
        self.block_rows = max(1, block_bytes // (4 * n_vars))
        n_max = max((w.n_spots for w in wsis), default=0)
        self._rows = min(self.block_rows, max(n_max, 1))
        self._buffers: dict[tuple[int, int], np.ndarray] = {}
        from . import mapped as _mapped

        self.mapped = mapped and _mapped.available()
        self.counts = {"blocks": 0, "wsis": len(wsis), "mmap": 0}
        self._plan = [
            (k, r0, min(r0 + self.block_rows, w.n_spots))
            for k, w in enumerate(wsis)
            for r0 in range(0, w.n_spots, self.block_rows)
        ]
        self._i = 0

    def _buffer(self, slot: int, which: int, n_cols: int) -> np.ndarray:
        key = (slot, which)
        if key not in self._buffers:
            self._buffers[key] = np.empty((self._rows, n_cols), np.float32)
        return self._buffers[key]

    def _read(self, i: int) -> Piece:
        """Read block ``i`` of the plan."""
        k, r0, r1 = self._plan[i]
        w = self.wsis[k]
        if self.mapped and r0 == 0:
            piece = self._map(k, w)
            if piece is not None:
                return piece
        x = self.truth.read_rows(
            w.truth_rows[r0:r1], self.truth_layer, out=self._buffer(0, 0, self.truth.n_vars)
        )
        y = self.pred.read_rows(w.pred_rows[r0:r1], None, out=self._buffer(0, 1, self.pred.n_vars))
        self.counts["blocks"] += 1
        return Piece(k, w, r0, r1, x, y)

    def _map(self, k: int, w) -> Piece | None:
        """WSI ``w`` mapped whole when both its matrices are stored raw and mostly cached, else None.
        The plan's other blocks of this WSI are then skipped."""
        from .mapped import MIN_RESIDENT, resident_fraction

        sources = ((self.truth, w.truth_rows, self.truth_layer), (self.pred, w.pred_rows, None))
        try:
            spans = [src.byte_range(rows, layer) for src, rows, layer in sources]
            if any(s is None for s in spans):
                return None
            cached = [
                resident_fraction(src.path, *span) for (src, _, _), span in zip(sources, spans, strict=True)
            ]
            if min(cached) < MIN_RESIDENT:  # from disk, one large read beats page faults
                return None
            x, y = (src.map_rows(rows, layer, populate=f < 1.0)
                    for (src, rows, layer), f in zip(sources, cached, strict=True))  # fmt: skip
        except Exception as err:  # noqa: BLE001 - any mapping trouble: the portable route from here on
            logger.info("memory mapping failed (%s); reading with h5py from here on", err)
            self.mapped = False
            return None
        if x is None or y is None:
            return None
        self.counts["mmap"] += 1
        return Piece(k, w, 0, w.n_spots, x, y)

    def __iter__(self):
        while self._i < len(self._plan):
            piece = self._read(self._i)
            self._i += 1
            if piece.last:  # a mapped WSI comes whole: skip its remaining blocks
                while self._i < len(self._plan) and self._plan[self._i][0] == piece.k:
                    self._i += 1
            yield piece
            del piece

    def close(self) -> None:
        """Release the buffers (the sources stay open: they belong to the caller)."""
        self._i = len(self._plan)
        self._buffers.clear()

    def __enter__(self) -> WsiReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
