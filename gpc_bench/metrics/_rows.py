"""Rows of a matrix at offsets of one flat buffer: how the kernels read a memory-mapped WSI in place."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RowMatrix:
    """Rows of a matrix that lie at given offsets of one flat buffer.

    The numba kernel reads this form directly, so rows can be taken in place from one buffer in
    any order (:meth:`from_array` for a 2-D array).

    Attributes
    ----------
    buf
        1-D buffer (any real dtype).
    offsets
        ``int64`` element offset of each row's first column in ``buf``.
    n_cols
        Columns per row.
    """

    buf: np.ndarray
    offsets: np.ndarray
    n_cols: int

    @classmethod
    def from_array(cls, a: np.ndarray) -> RowMatrix:
        a = np.ascontiguousarray(a)
        if a.ndim != 2:
            raise ValueError(f"expected a 2-D array, got shape {a.shape}")
        return cls(a.reshape(-1), np.arange(a.shape[0], dtype=np.int64) * a.shape[1], a.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.offsets), self.n_cols

    def rows(self, index: np.ndarray | None = None) -> np.ndarray:
        """A 2-D copy of the rows ``index`` (default: all rows)."""
        offsets = self.offsets if index is None else self.offsets[np.asarray(index)]
        out = np.empty((len(offsets), self.n_cols), dtype=self.buf.dtype)
        for i, o in enumerate(offsets.tolist()):
            out[i] = self.buf[o : o + self.n_cols]
        return out


def as_array(a: np.ndarray | RowMatrix) -> np.ndarray:
    """``a`` as a 2-D array: a :class:`RowMatrix` whose rows follow each other in its buffer
    becomes a view (a mapped WSI is read in place), any other one a copy."""
    if not isinstance(a, RowMatrix):
        return a
    n, g = a.shape
    o = a.offsets
    if n and int(o[0]) + n * g <= len(a.buf) and np.array_equal(o, o[0] + np.arange(n, dtype=np.int64) * g):
        return a.buf[int(o[0]) : int(o[0]) + n * g].reshape(n, g)
    return a.rows()
