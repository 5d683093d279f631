"""A long result table held as named numpy columns, written with Arrow, and a pandas view on demand.

``score`` builds its tables from arrays and writes them with pyarrow (parquet, and CSV through
Arrow's multi-threaded writer), so that the command line never imports pandas (0.3-0.4 s).
A :class:`Table` becomes a :class:`pandas.DataFrame` only when a caller asks for one.

Column kinds: a 1-D numpy array (float, integer, bool, or strings as an object or unicode array),
a :class:`Categorical` (codes into a few strings: 23 x 38,982 gene rows stay codes), or a
:class:`NullableInt` (an integer column with missing values, e.g. variance levels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


@dataclass(frozen=True)
class Categorical:
    """``categories[codes]``: a string column stored as codes into ``categories`` (code -1 is a
    missing value). Long tables repeat a few strings many times (WSIs, genes, pathways), and
    are built, reordered and written without making a string per row.

    Attributes
    ----------
    codes, categories
        Integer codes and the strings they point to.
    pandas_category
        Whether :meth:`Table.to_pandas` gives a ``category`` column (when the categories are
        unique strings) or a plain ``object`` one.
    """

    codes: np.ndarray
    categories: np.ndarray
    pandas_category: bool = True

    def __len__(self) -> int:
        return len(self.codes)

    def take(self, order: np.ndarray) -> Categorical:
        return Categorical(self.codes[order], self.categories, self.pandas_category)

    @cached_property
    def unique(self) -> bool:
        """Whether the categories are distinct strings (a pandas or Arrow dictionary)."""
        cats = self.categories.tolist()
        return all(isinstance(c, str) for c in cats) and len(set(cats)) == len(cats)

    def values(self) -> np.ndarray:
        """The strings, as an object array (None where missing)."""
        if not len(self.categories):
            return np.full(len(self.codes), None, dtype=object)
        return np.where(self.codes >= 0, self.categories[np.maximum(self.codes, 0)], None)


@dataclass(frozen=True)
class NullableInt:
    """An integer column with missing entries (``missing`` True)."""

    values: np.ndarray
    missing: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    def take(self, order: np.ndarray) -> NullableInt:
        return NullableInt(self.values[order], self.missing[order])


def categorical(codes: np.ndarray, categories: Sequence, *, pandas_category: bool = True) -> Categorical:
    """``categories[codes]`` as a :class:`Categorical` (``int32`` codes, object categories)."""
    cats = np.asarray(categories, dtype=object)
    return Categorical(np.asarray(codes).astype(np.int32), cats, pandas_category)


def levels(values: np.ndarray) -> NullableInt:
    """Variance levels: 0 (no level) becomes missing."""
    values = np.asarray(values, dtype=np.int64)
    return NullableInt(values, values == 0)


class Table:
    """Named columns of equal length, in a fixed order.

    Parameters
    ----------
    columns
        Column name to a 1-D array, :class:`Categorical` or :class:`NullableInt`.
    """

    def __init__(self, columns: dict) -> None:
        lengths = {name: len(col) for name, col in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns differ in length: {lengths}")
        self.columns = dict(columns)

    def __len__(self) -> int:
        return next((len(c) for c in self.columns.values()), 0)

    def take(self, order: np.ndarray) -> Table:
        """The rows in ``order``."""
        cols = {}
        for name, col in self.columns.items():
            cols[name] = col.take(order) if isinstance(col, Categorical | NullableInt) else col[order]
        return Table(cols)

    def to_pandas(self) -> pd.DataFrame:
        """A :class:`pandas.DataFrame`: categoricals as ``category``, nullable integers as
        ``Int64``, strings as ``object``."""
        import pandas as pd

        data = {}
        for name, col in self.columns.items():
            if isinstance(col, Categorical) and col.pandas_category and col.unique:
                data[name] = pd.Categorical.from_codes(col.codes, pd.Index(col.categories, dtype=object))
            elif isinstance(col, Categorical):
                data[name] = col.values()
            elif isinstance(col, NullableInt):
                data[name] = pd.arrays.IntegerArray(col.values.astype(np.int64), col.missing.copy())
            elif col.dtype.kind == "U":
                data[name] = col.astype(object)
            else:
                data[name] = col
        return pd.DataFrame(data, index=pd.RangeIndex(len(self)), columns=list(self.columns))

    def to_arrow(self) -> pa.Table:
        """A :class:`pyarrow.Table` with plain column types (strings, numbers, booleans);
        NaN is written as a missing value, as pandas writes it.

        Arrays are assembled from their buffers: ``pyarrow.array`` would import pandas (0.25 s).
        """
        import pyarrow as pa

        arrays = []
        for col in self.columns.values():
            if isinstance(col, Categorical) and col.unique:  # dictionary-encoded, as parquet stores it
                missing = col.codes < 0
                codes = _arrow_values(pa.int32(), col.codes.astype(np.int32), missing)
                arrays.append(pa.DictionaryArray.from_arrays(codes, _arrow_strings(col.categories)))
            elif isinstance(col, Categorical):
                arrays.append(_arrow_strings(col.categories, col.codes))
            elif isinstance(col, NullableInt):
                arrays.append(_arrow_values(pa.int64(), col.values.astype(np.int64), col.missing))
            elif col.dtype.kind in "OU":
                arrays.append(_arrow_strings(col))
            elif col.dtype.kind == "b":
                bits = np.packbits(col, bitorder="little")
                arrays.append(pa.Array.from_buffers(pa.bool_(), len(col), [None, pa.py_buffer(bits)]))
            elif col.dtype.kind == "f":
                values = col.astype(np.float64)
                arrays.append(_arrow_values(pa.float64(), values, np.isnan(values)))
            elif col.dtype.kind in "iu":
                arrays.append(_arrow_values(pa.int64(), col.astype(np.int64), None))
            else:
                raise TypeError(f"no Arrow type for a column of dtype {col.dtype}")
        return pa.Table.from_arrays(arrays, names=list(self.columns))

    def write_csv(self, path: str | Path) -> None:
        """CSV (UTF-8, ``\\n`` line ends) by Arrow's writer: missing values empty, floats in their
        shortest round-trip form, booleans ``true``/``false``. Values are not quoted unless some
        string in the table holds a comma, quote or line end; then every string is quoted."""
        import csv
        import io

        import pyarrow as pa
        import pyarrow.csv as pcsv

        head = io.StringIO()
        csv.writer(head, lineterminator="\n").writerow(self.columns)
        table = self.to_arrow()
        with open(path, "wb") as f:
            f.write(head.getvalue().encode())
            try:
                pcsv.write_csv(table, f, pcsv.WriteOptions(include_header=False, quoting_style="none"))
            except pa.ArrowInvalid:  # a value needs quotes: quote every string
                f.seek(0)
                f.truncate()
                f.write(head.getvalue().encode())
                pcsv.write_csv(table, f, pcsv.WriteOptions(include_header=False, quoting_style="needed"))

    def write_parquet(self, path: str | Path) -> None:
        """Parquet without an Arrow or pandas schema: every reader sees plain column types
        (dictionary-encoded strings read back as strings). Only string columns are
        dictionary-encoded: numbers rarely repeat, and trying to costs half the write."""
        import pyarrow.parquet as pq

        strings = [
            name
            for name, col in self.columns.items()
            if isinstance(col, Categorical) or (isinstance(col, np.ndarray) and col.dtype.kind in "OU")
        ]
        pq.write_table(self.to_arrow(), str(path), store_schema=False, use_dictionary=strings)

    @classmethod
    def from_pandas(cls, df: pd.DataFrame) -> Table:
        """A table from a DataFrame (categoricals kept as codes, nullable integers kept)."""
        import pandas as pd

        cols = {}
        for name in df.columns:
            s = df[name]
            if isinstance(s.dtype, pd.CategoricalDtype):
                cols[str(name)] = categorical(s.cat.codes.to_numpy(), s.cat.categories.to_numpy(dtype=object))
            elif isinstance(s.dtype, pd.Int64Dtype):
                cols[str(name)] = NullableInt(s.fillna(0).to_numpy(np.int64), s.isna().to_numpy())
            else:
                cols[str(name)] = s.to_numpy()
        return cls(cols)


def _arrow_values(kind, values: np.ndarray, missing: np.ndarray | None):
    """A fixed-width Arrow array over ``values`` (contiguous), with ``missing`` as nulls."""
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    n_missing = 0 if missing is None else int(missing.sum())
    validity = None if not n_missing else pa.py_buffer(np.packbits(~missing, bitorder="little"))
    return pa.Array.from_buffers(kind, len(values), [validity, pa.py_buffer(values)], null_count=n_missing)


def _arrow_strings(values: np.ndarray, codes: np.ndarray | None = None):
    """A UTF-8 Arrow array of ``values`` (strings; None or NaN is a null), or of ``values[codes]``
    (code -1 a null): each distinct value is encoded once."""
    import pyarrow as pa

    items = [None, *values.tolist()]  # item 0: the null that code -1 points to
    missing = np.fromiter((v is None or v != v for v in items), bool, len(items))
    encoded = [b"" if m else str(v).encode() for v, m in zip(items, missing.tolist(), strict=True)]
    if codes is not None:
        where = np.asarray(codes, dtype=np.int64) + 1
        missing = missing[where]
        encoded = list(map(encoded.__getitem__, where.tolist()))
    else:
        missing, encoded = missing[1:], encoded[1:]
    n = len(encoded)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.fromiter(map(len, encoded), np.int64, n), out=offsets[1:])
    large = offsets[-1] >= 2**31
    kind, offsets = (pa.large_string(), offsets) if large else (pa.string(), offsets.astype(np.int32))
    n_missing = int(missing.sum())
    validity = None if not n_missing else pa.py_buffer(np.packbits(~missing, bitorder="little"))
    buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(kind, n, buffers, null_count=n_missing)
