"""Column-wise Pearson correlation of two spot x gene matrices.

The kernel makes one pass over float32 data and accumulates float64 sums of
the *shifted* values (x - x[0]): sums, sums of squares and cross products, and the cross
products with a per-spot covariate d (sequencing depth; :mod:`gpc_bench.metrics.depth`).
Shifting by the first row keeps the sums well conditioned and makes a constant
column exactly zero, so "constant" is an exact test, not a tolerance.  Rows are
processed in small chunks that stay in cache and genes in blocks that run on
threads (numpy releases the GIL), so the cost is a single read of both inputs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._rows import RowMatrix, as_array  # noqa: E402,F401  (re-exported)

ConstantPrediction = Literal["zero", "exclude"]

#: per-gene flags written to the gene table
OK, TRUTH_CONSTANT, PREDICTION_CONSTANT = 0, 1, 2
#: r read from a correlation table (``score --gene-pcc``): defined there, or not
GIVEN, UNDEFINED = 3, 4
FLAG_NAMES = {
    OK: "ok",
    TRUTH_CONSTANT: "truth_constant",
    PREDICTION_CONSTANT: "prediction_constant",
    GIVEN: "given",
    UNDEFINED: "undefined",
}

_ROW_CHUNK = 32
_GENE_BLOCK = 2048


class NonFiniteError(ValueError):
    """A NaN or infinite value in one of the matrices (``which`` is "x" or "y")."""

    def __init__(self, which: str, column: int) -> None:
        self.which, self.column = which, column
        super().__init__(f"non-finite value in {which}, column {column}")


@dataclass
class Moments:
    """Shifted float64 sums of two matrices, column by column.

    Attributes
    ----------
    n
        Number of rows (spots).
    x0, y0
        The shift (first row) of each column.
    sx, sy, sxx, syy, sxy
        Sums of shifted values, their squares and their cross products.
    sxd, syd
        Sums of the shifted values times the shifted covariate (zero without one).
    d0, sd, sdd
        The covariate's shift (its first value), and the sums of its shifted values and squares.
    """

    n: int
    x0: np.ndarray
    y0: np.ndarray
    sx: np.ndarray
    sy: np.ndarray
    sxx: np.ndarray
    syy: np.ndarray
    sxy: np.ndarray
    sxd: np.ndarray | None = None
    syd: np.ndarray | None = None
    d0: float = 0.0
    sd: float = 0.0
    sdd: float = 0.0

    @property
    def mean_x(self) -> np.ndarray:
        return self.x0 + self.sx / self.n

    @property
    def mean_y(self) -> np.ndarray:
        return self.y0 + self.sy / self.n

    @property
    def m2_x(self) -> np.ndarray:
        """Sum of squared deviations from the mean (n x population variance)."""
        return np.maximum(self.sxx - self.sx * self.sx / self.n, 0.0)

    @property
    def m2_y(self) -> np.ndarray:
        return np.maximum(self.syy - self.sy * self.sy / self.n, 0.0)

    @property
    def cov_xy(self) -> np.ndarray:
        """Co-moment sum((x - mean x)(y - mean y))."""
        return self.sxy - self.sx * self.sy / self.n

    @property
    def mean_d(self) -> float:
        return self.d0 + self.sd / self.n

    @property
    def m2_d(self) -> float:
        return max(self.sdd - self.sd * self.sd / self.n, 0.0)

    @property
    def cov_xd(self) -> np.ndarray:
        """Co-moment of x with the covariate, sum((x - mean x)(d - mean d))."""
        return self.sxd - self.sx * self.sd / self.n

    @property
    def cov_yd(self) -> np.ndarray:
        return self.syd - self.sy * self.sd / self.n

    @property
    def constant_x(self) -> np.ndarray:
        return self.sxx == 0.0

    @property
    def constant_y(self) -> np.ndarray:
        return self.syy == 0.0


def _take(a: np.ndarray, rows: slice, cols) -> np.ndarray:
    return a[rows, cols] if isinstance(cols, slice) else np.take(a[rows], cols, axis=1)


def _block_sums(x, y, xcols, ycols, log1p_x: bool, x0: np.ndarray, y0: np.ndarray, d: np.ndarray):
    """The sums of rows of ``x`` and ``y`` shifted by ``x0`` and ``y0``, their squares and cross
    products, and their products with the shifted covariate ``d`` (``(7, width)``), numpy only.

    Rows are taken :data:`_ROW_CHUNK` at a time into two float64 buffers that stay in cache; the
    squares and cross products are summed by ``einsum`` without writing them out.
    """
    n = x.shape[0]
    width = (xcols.stop - xcols.start) if isinstance(xcols, slice) else len(xcols)
    rc = min(_ROW_CHUNK, n)
    acc = np.zeros((7, width))
    dx = np.empty((rc, width))
    dy = np.empty((rc, width))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        for i in range(0, n, rc):
            r = min(rc, n - i)
            bx, by = dx[:r], dy[:r]
            if log1p_x:
                np.log1p(_take(x, slice(i, i + r), xcols), out=bx, dtype=np.float64)
                bx -= x0
            else:
                np.subtract(_take(x, slice(i, i + r), xcols), x0, out=bx, dtype=np.float64)
            np.subtract(_take(y, slice(i, i + r), ycols), y0, out=by, dtype=np.float64)
            acc[0] += bx.sum(axis=0)
            acc[1] += by.sum(axis=0)
            acc[2] += np.einsum("ij,ij->j", bx, bx)
            acc[3] += np.einsum("ij,ij->j", by, by)
            acc[4] += np.einsum("ij,ij->j", bx, by)
            acc[5] += d[i : i + r] @ bx
            acc[6] += d[i : i + r] @ by
        return acc


def _as_index(cols, n: int):
    """Return a slice when ``cols`` is a contiguous ascending range (faster views)."""
    if cols is None:
        return slice(0, n)
    cols = np.asarray(cols, dtype=np.int64)
    if len(cols) and np.all(np.diff(cols) == 1):
        return slice(int(cols[0]), int(cols[-1]) + 1)
    return cols


def _sub(index, j0: int, j1: int):
    if isinstance(index, slice):
        return slice(index.start + j0, index.start + j1)
    return index[j0:j1]


#: below this many matrix elements in a whole cohort, the numpy kernel finishes before numba
#: would have loaded its compiled kernel (~0.5 s per process, measured: docs/performance.md)
NUMBA_MIN_ELEMENTS = 200_000_000


def kernel_name(n_elements: int | None = None, *, load: bool = True, choice: str = "auto") -> str:
    """Which kernel runs: ``numba`` (fused, compiled) when importable, else ``numpy``.

    ``choice`` (:class:`gpc_bench.settings.Settings` ``kernel``) ``numpy`` or ``numba`` forces a
    kernel. With ``auto``, a workload of ``n_elements`` (spots x genes,
    when given) below :data:`NUMBA_MIN_ELEMENTS` uses numpy. ``load=False`` answers without importing
    numba (``numba`` then means: installed and wanted).
    """
    if choice == "numpy":
        return "numpy"
    if choice == "auto" and n_elements is not None and n_elements < NUMBA_MIN_ELEMENTS:
        return "numpy"
    if not load:  # installed (found without importing it) means wanted
        from importlib.util import find_spec

        return "numba" if find_spec("numba") is not None else "numpy"
    try:
        from . import _pcc_numba  # noqa: F401
    except ImportError:  # pragma: no cover - numba missing or broken
        return "numpy"
    return "numba"


#: rows gathered at a time when columns come in an unrelated order (128 rows of 39k genes: 20 MB,
#: which stays in the last-level cache between the gather and the accumulation)
_GATHER_ROWS = 128


def _ascending(index) -> bool:
    return isinstance(index, slice) or bool(np.all(np.diff(index) > 0))


def _first_row(a, index) -> np.ndarray:
    """Row 0 of ``a`` (array or :class:`RowMatrix`) at the columns ``index``, as float64."""
    if not isinstance(a, RowMatrix):
        return _take(a, slice(0, 1), index)[0].astype(np.float64)
    o = int(a.offsets[0])
    if isinstance(index, slice):
        return a.buf[o + index.start : o + index.stop].astype(np.float64)
    return a.buf[o + index].astype(np.float64)


def _rows_in_gene_order(m: RowMatrix, index, buf, r0: int, r1: int, pmap):
    """Rows ``r0:r1`` of ``m`` and the columns to read in them: in place when ``buf`` is None,
    else gathered into ``buf`` in the order of ``index`` (two halves on the thread pool)."""
    offsets = m.offsets[r0:r1]
    if buf is None:
        return RowMatrix(m.buf, offsets, m.n_cols), index
    from . import _pcc_numba as nb

    out = buf[: r1 - r0]
    half = (r1 - r0 + 1) // 2
    pmap(lambda s: nb.gather_rows(m.buf, offsets[s], index, out[s]), [slice(0, half), slice(half, r1 - r0)])
    return RowMatrix.from_array(out), slice(0, out.shape[1])


def default_threads() -> int:
    """Threads for the kernel when none are given: the usable cores, at most 8."""
    from ..settings import default_threads as cores

    return cores()


def column_moments(
    x: np.ndarray,
    y: np.ndarray,
    *,
    x_cols: np.ndarray | None = None,
    y_cols: np.ndarray | None = None,
    log1p_x: bool = False,
    threads: int | None = None,
    gene_block: int = _GENE_BLOCK,
    kernel: str | None = None,
    d: np.ndarray | None = None,
) -> Moments:
    """Accumulate the sums needed for per-column Pearson correlations.

    Parameters
    ----------
    x, y
        ``(n_spots, n_genes)`` arrays (float32 recommended) or :class:`RowMatrix`, with rows
        aligned.
    x_cols, y_cols
        Column indices selecting and ordering the genes of each matrix
        (``None``: all columns).  Both must have the same length.
    log1p_x
        Apply ``log1p`` to ``x`` on the fly (raw counts as truth).
    threads
        Worker threads over gene blocks (default :func:`default_threads`).
    gene_block
        Genes per block.
    kernel
        ``"numba"`` or ``"numpy"`` (default: :func:`kernel_name`).
    d
        ``(n_spots,)`` covariate (depth) whose co-moments with both matrices are accumulated too.

    Raises
    ------
    NonFiniteError
        When either matrix holds NaN or infinity in a selected column.
    """
    acc = MomentAccumulator(
        x.shape[1],
        y.shape[1],
        x_cols=x_cols,
        y_cols=y_cols,
        log1p_x=log1p_x,
        threads=threads,
        gene_block=gene_block,
        kernel=kernel,
    )
    acc.add(x, y, d)
    return acc.result()


class MomentAccumulator:
    """:func:`column_moments` fed row chunk by row chunk (a WSI streamed from disk).

    With the numba kernel the result is bit-identical to one call with all rows: every gene adds
    up its rows in the same order, and the shift is the first row of the first chunk.  The numpy
    kernel adds each chunk's sums to the running ones (the same values up to rounding).

    Parameters
    ----------
    n_x_cols, n_y_cols
        Columns of the matrices that :meth:`add` will get.
    x_cols, y_cols, log1p_x, threads, gene_block, kernel
        As for :func:`column_moments`.
    """

    def __init__(
        self,
        n_x_cols: int,
        n_y_cols: int,
        *,
        x_cols=None,
        y_cols=None,
        log1p_x: bool = False,
        threads: int | None = None,
        gene_block: int = _GENE_BLOCK,
        kernel: str | None = None,
    ) -> None:
        self.xi, self.yi = _as_index(x_cols, n_x_cols), _as_index(y_cols, n_y_cols)
        n_genes = _width(self.xi)
        if n_genes != _width(self.yi):
            raise ValueError(f"column selections differ in length: {n_genes} vs {_width(self.yi)}")
        self.n_cols = (n_x_cols, n_y_cols)
        self.log1p_x = log1p_x
        self.kernel = kernel_name() if kernel is None else kernel
        self.threads = default_threads() if threads is None else threads
        self.blocks = [(j, min(j + gene_block, n_genes)) for j in range(0, n_genes, gene_block)]
        self.gather = (not _ascending(self.xi), not _ascending(self.yi))
        self.n = 0
        self.acc = np.zeros((9, n_genes))
        self.d0 = self.sd = self.sdd = 0.0

    def add(self, x: np.ndarray | RowMatrix, y: np.ndarray | RowMatrix, d: np.ndarray | None = None) -> None:
        """Add the rows of ``x`` and ``y`` (arrays or :class:`RowMatrix`, rows aligned) and of the
        covariate ``d`` (finite float64, one value per row; ``None``: zero)."""
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"row counts differ: {x.shape[0]} vs {y.shape[0]}")
        if (x.shape[1], y.shape[1]) != self.n_cols:
            raise ValueError(f"expected {self.n_cols} columns, got {(x.shape[1], y.shape[1])}")
        if x.shape[0] == 0 or not self.blocks:
            return
        numba = self.kernel == "numba"
        if numba:
            x = x if isinstance(x, RowMatrix) else RowMatrix.from_array(x)
            y = y if isinstance(y, RowMatrix) else RowMatrix.from_array(y)
        else:
            x, y = as_array(x), as_array(y)
        if self.n == 0:  # the shift: the first row
            with np.errstate(invalid="ignore", divide="ignore"):
                x0 = _first_row(x, self.xi)
                self.acc[0] = np.log1p(x0) if self.log1p_x else x0
            self.acc[1] = _first_row(y, self.yi)
            self.d0 = 0.0 if d is None else float(d[0])
        if d is None:
            d = np.zeros(x.shape[0])
        elif len(d) != x.shape[0]:
            raise ValueError(f"covariate has {len(d)} values for {x.shape[0]} rows")
        d = np.asarray(d, dtype=np.float64) - self.d0
        self.sd += float(d.sum())
        self.sdd += float(d @ d)
        self.n += x.shape[0]
        n_threads = max(1, min(self.threads, len(self.blocks)))
        with ThreadPoolExecutor(n_threads) as pool:

            def pmap(fn, items) -> list:
                return list(pool.map(fn, items)) if n_threads > 1 and len(items) > 1 else list(map(fn, items))

            if numba:
                self._add_numba(x, y, d, pmap)
            else:
                xi, yi, acc, log1p_x = self.xi, self.yi, self.acc, self.log1p_x

                def block(b):
                    cols = slice(*b)
                    xc, yc = _sub(xi, *b), _sub(yi, *b)
                    acc[2:, cols] += _block_sums(x, y, xc, yc, log1p_x, acc[0, cols], acc[1, cols], d)

                pmap(block, self.blocks)

    def _add_numba(self, x: RowMatrix, y: RowMatrix, d: np.ndarray, pmap) -> None:
        """Column selections in ascending order are read in place.  A selection in another order
        (the truth file lists genes in an unrelated order) would make every gene block read whole
        rows from memory, so its rows are first gathered, :data:`_GATHER_ROWS` at a time, into a
        small buffer in gene order; the sums carry over, so the result is the same bits."""
        from . import _pcc_numba as nb

        acc, log1p_x = self.acc, self.log1p_x

        def run(xm, ym, xc, yc, dd):
            def block(b):
                sx, sy, part = _sub(xc, *b), _sub(yc, *b), acc[:, b[0] : b[1]]
                if isinstance(sx, slice) and isinstance(sy, slice):
                    nb.accumulate_contiguous(
                        xm.buf, xm.offsets, sx.start, ym.buf, ym.offsets, sy.start, log1p_x, dd, part
                    )
                else:
                    sx = np.arange(sx.start, sx.stop) if isinstance(sx, slice) else sx
                    sy = np.arange(sy.start, sy.stop) if isinstance(sy, slice) else sy
                    nb.accumulate_gather(xm.buf, xm.offsets, sx, ym.buf, ym.offsets, sy, log1p_x, dd, part)

            pmap(block, self.blocks)

        if not any(self.gather):
            run(x, y, self.xi, self.yi, d)
            return
        n, width = x.shape[0], acc.shape[1]
        scratch = [
            np.empty((min(n, _GATHER_ROWS), width), m.buf.dtype) if g else None
            for m, g in zip((x, y), self.gather, strict=True)
        ]
        for r0 in range(0, n, _GATHER_ROWS):
            r1 = min(n, r0 + _GATHER_ROWS)
            (xm, xc), (ym, yc) = (
                _rows_in_gene_order(m, index, buf, r0, r1, pmap)
                for m, index, buf in zip((x, y), (self.xi, self.yi), scratch, strict=True)
            )
            run(xm, ym, xc, yc, d[r0:r1])

    def result(self) -> Moments:
        """The moments of all rows added so far.

        Raises
        ------
        NonFiniteError
            When either matrix held NaN or infinity in a selected column.
        """
        res = self.acc
        if self.n == 0:
            nan = np.full(res.shape[1], np.nan)
            zero = np.zeros(res.shape[1])
            return Moments(0, nan, nan.copy(), *(zero.copy() for _ in range(7)))
        finite = np.isfinite(res)
        if not finite.all():
            bad_x = ~(finite[0] & finite[2] & finite[4])
            col = int(np.flatnonzero(bad_x)[0] if bad_x.any() else np.flatnonzero(~finite.all(0))[0])
            raise NonFiniteError("x" if bad_x.any() else "y", col)
        return Moments(self.n, *(res[i].copy() for i in range(9)), self.d0, self.sd, self.sdd)


def _width(index) -> int:
    return (index.stop - index.start) if isinstance(index, slice) else len(index)


def pearson_from_moments(
    m: Moments, constant_prediction: ConstantPrediction = "zero"
) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r per column, and a flag per column.

    Returns
    -------
    r
        NaN where the truth is constant; where only the prediction is constant,
        0 (``"zero"``) or NaN (``"exclude"``).
    flags
        :data:`OK`, :data:`TRUTH_CONSTANT` or :data:`PREDICTION_CONSTANT`.
    """
    if constant_prediction not in ("zero", "exclude"):
        raise ValueError(f"constant_prediction must be 'zero' or 'exclude', not {constant_prediction!r}")
    cx, cy = m.constant_x, m.constant_y
    flags = np.where(cx, TRUTH_CONSTANT, np.where(cy, PREDICTION_CONSTANT, OK)).astype(np.int8)
    ok = flags == OK
    r = np.full(len(flags), np.nan)
    if m.n:
        cov = m.cov_xy
        denom = np.sqrt(m.m2_x * m.m2_y)
        np.divide(cov, denom, out=r, where=ok & (denom > 0))
        np.clip(r, -1.0, 1.0, out=r)
    if constant_prediction == "zero":
        r[flags == PREDICTION_CONSTANT] = 0.0
    return r, flags


def pearson_columns(
    x: np.ndarray, y: np.ndarray, constant_prediction: ConstantPrediction = "zero", **kwargs
) -> np.ndarray:
    """Pearson r between matching columns of ``x`` (truth) and ``y`` (prediction)."""
    return pearson_from_moments(column_moments(x, y, **kwargs), constant_prediction)[0]
