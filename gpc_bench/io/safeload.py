"""Untrusted pickles and torch files: plain data out, nothing constructed that can act.

A pickle can name any class and call it with any arguments while it is read. The readers here
accept only a short allow-list of plain containers (numpy arrays and dtypes, pandas frames and
indexes, dicts, lists, tuples, sets, strings). Classes that hold live resources -- ``AnnData`` with
its ``AnnDataFileManager``, SciPy sparse matrices -- are never built: the names map to
:class:`Record`, which keeps the constructor arguments and state as plain data, and callers rebuild
the objects they need from that data (:func:`anndata_from_record`).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._errors import InputError

if TYPE_CHECKING:
    import anndata as ad

__all__ = ["Record", "anndata_from_record", "load_pickle", "load_torch"]


class Record:
    """Stand-in for a class named by an untrusted file: ``args`` and ``state`` as plain data."""

    qualname = "?"

    def __new__(cls, *args, **kwargs):
        inst = object.__new__(cls)
        inst.args, inst.state = args, None
        return inst

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state

    def __repr__(self) -> str:
        return f"Record({self.qualname})"


def _record_type(qualname: str) -> type:
    return type("Record_" + qualname.rsplit(".", 1)[-1], (Record,), {"qualname": qualname})


_RECORDED = [
    "anndata._core.anndata.AnnData",
    "anndata._core.file_backing.AnnDataFileManager",
    "anndata._core.raw.Raw",
    "scipy.sparse._csr.csr_matrix", "scipy.sparse._csc.csc_matrix",
    "scipy.sparse._csr.csr_array", "scipy.sparse._csc.csc_array",
    "scipy.sparse.csr.csr_matrix", "scipy.sparse.csc.csc_matrix",
]  # fmt: skip
_RECORD_TYPES = {name: _record_type(name) for name in _RECORDED}

# (module, name) an untrusted file may name, and where it lives today (numpy 1 pickles name
# numpy.core.*, numpy 2 moved it to numpy._core.*)
_PLAIN = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
    ("_codecs", "encode"): ("_codecs", "encode"),
    ("collections", "OrderedDict"): ("collections", "OrderedDict"),
}
_PLAIN |= {("builtins", n): ("builtins", n) for n in ("dict", "list", "tuple", "set", "frozenset", "slice")}
_PLAIN |= {("__builtin__", n): ("builtins", n) for n in ("dict", "list", "tuple", "set", "frozenset")}
_PLAIN |= {("numpy.dtypes", n): ("numpy.dtypes", n) for n in dir(np.dtypes) if n.endswith("DType")}
_PANDAS = [
    ("pandas.core.frame", "DataFrame"), ("pandas.core.series", "Series"),
    ("pandas.core.indexes.base", "Index"), ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.indexes.range", "RangeIndex"), ("pandas.core.indexes.category", "CategoricalIndex"),
    ("pandas.core.internals.managers", "BlockManager"),
    ("pandas.core.internals.managers", "SingleBlockManager"),
    ("pandas.core.internals.blocks", "new_block"), ("pandas._libs.internals", "_unpickle_block"),
    ("pandas.core.arrays.categorical", "Categorical"), ("pandas.core.dtypes.dtypes", "CategoricalDtype"),
]  # fmt: skip


def _resolve(module: str, name: str):
    import importlib

    return getattr(importlib.import_module(module), name)


def _allowed(pandas: bool) -> dict[str, object]:
    """Every name an untrusted file may use, mapped to the object it gets."""
    out: dict[str, object] = dict(_RECORD_TYPES)
    for (module, name), (real_module, real_name) in _PLAIN.items():
        try:
            out[f"{module}.{name}"] = _resolve(real_module, real_name)
        except (ImportError, AttributeError):  # another numpy layout: not needed there
            continue
    for module, name in _PANDAS if pandas else []:
        try:
            out[f"{module}.{name}"] = _resolve(module, name)
        except (ImportError, AttributeError):
            continue
    return out


def _refusal(path: Path, what: str, name: str) -> InputError:
    return InputError(
        f"{path}: refusing to load {name}: {what} may hold only plain data (arrays, frames, lists, "
        "dicts, strings), and reading this name would run code",
        "the file is not what it claims to be, or has been tampered with; do not load it with pickle",
    )


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, allowed: dict, path: Path, what: str) -> None:
        super().__init__(io.BytesIO(data))
        self._allowed, self._path, self._what = allowed, path, what

    def find_class(self, module: str, name: str):
        obj = self._allowed.get(f"{module}.{name}")
        if obj is None:
            raise _refusal(self._path, self._what, f"{module}.{name}")
        return obj

    def persistent_load(self, pid):
        raise InputError(f"{self._path}: refusing a pickle with persistent references ({self._what})")


def load_pickle(path: str | Path, what: str, *, pandas: bool = False) -> object:
    """Read a plain pickle, allowing only plain data (see the module docstring).

    Raises
    ------
    InputError
        The file is missing, truncated, not a pickle, or names anything outside the allow-list.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} not found")
    try:
        return _Unpickler(path.read_bytes(), _allowed(pandas), path, what).load()
    except InputError:
        raise
    except Exception as err:  # truncated, text, another format
        raise InputError(
            f"{path} is not a readable pickle ({what}): {type(err).__name__}: {str(err)[:200]}",
            "the file may be truncated or of another format",
        ) from None


def load_torch(path: str | Path, what: str, *, pandas: bool = False, records: bool = False) -> object:
    """Read a ``torch.save``d file with ``weights_only=True``: tensors and plain data only.

    With ``records``, the record types of the module docstring (AnnData, sparse matrices) are
    accepted as :class:`Record` s; with ``pandas``, pandas frames too. A legacy (non-zip) pickle
    goes through the same allow-list.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} not found")
    try:
        import torch
    except ImportError:
        raise InputError(
            f"{path} is a torch file ({what}), and reading it needs PyTorch, which is not installed",
            "install the model extra: pip install 'gpc-bench[model]'",
        ) from None
    allowed = _allowed(pandas)
    if not records:
        allowed = {k: v for k, v in allowed.items() if not isinstance(v, type) or not issubclass(v, Record)}
    extra = [(obj, name) for name, obj in allowed.items()]
    try:
        with torch.serialization.safe_globals(extra):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a bad or an unsafe file
        text = str(err)
        if "GLOBAL" in text or "global" in text or "Unsupported" in text:
            import re

            m = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"global ([\w.]+)", text)
            raise _refusal(path, what, m.group(1) if m else "a class outside the allow-list") from None
        first = text.strip().splitlines()[0][:200] if text.strip() else type(err).__name__
        raise InputError(
            f"{path} is not a readable torch file ({what}): {first}",
            "the file may be truncated or of another format",
        ) from None


def _dense_or_sparse(x, where: str):
    """An array from a record's field: an ndarray, or a CSR/CSC record rebuilt with SciPy."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, Record) and isinstance(x.state, dict) and "sparse" in x.qualname:
        import scipy.sparse as sp

        s = x.state
        try:
            parts = (np.asarray(s["data"]), np.asarray(s["indices"]), np.asarray(s["indptr"]))
            shape = tuple(int(v) for v in s.get("_shape", s.get("shape")))
            make = sp.csr_matrix if "csr" in x.qualname else sp.csc_matrix
            return make(parts, shape=shape)
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"{where}: a damaged sparse matrix ({err})") from None
    raise InputError(f"{where}: expected an array, got {type(x).__name__}")


def anndata_from_record(rec: dict, where: str) -> ad.AnnData:
    """Rebuild an AnnData from the plain state of an unpickled AnnData :class:`Record`: X, obs,
    var, layers and uns only (no file backing, no raw)."""
    import anndata as ad
    import pandas as pd

    if not isinstance(rec, Record) or not rec.qualname.endswith("AnnData") or not isinstance(rec.state, dict):
        raise InputError(f"{where}: expected an AnnData, got {type(rec).__name__}")
    s = rec.state
    if s.get("_is_view"):
        raise InputError(f"{where}: a view of an AnnData was saved", "save adata.copy() instead")
    obs, var = s.get("_obs"), s.get("_var")
    if not isinstance(obs, pd.DataFrame) or not isinstance(var, pd.DataFrame):
        raise InputError(f"{where}: obs and var must be DataFrames")
    x = _dense_or_sparse(s.get("_X"), f"{where} X")
    layers = s.get("_layers") or {}
    if not isinstance(layers, dict):
        raise InputError(f"{where}: layers must be a dict")
    layers = {str(k): _dense_or_sparse(v, f"{where} layers[{k!r}]") for k, v in layers.items()}
    uns = s.get("_uns") or {}
    uns = dict(uns) if isinstance(uns, dict) else {}
    for name, arr in [("X", x), *layers.items()]:
        if arr.shape != (len(obs), len(var)):
            raise InputError(
                f"{where}: {name} is {arr.shape[0]} x {arr.shape[1]} but obs has {len(obs)} rows and "
                f"var {len(var)}"
            )
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*names are not unique")
        a = ad.AnnData(X=x, obs=obs, var=var, uns=uns)
    for k, v in layers.items():
        a.layers[k] = v
    return a
