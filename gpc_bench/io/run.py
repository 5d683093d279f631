"""Read a run folder written by ``gpc-bench score`` (a :class:`~gpc_bench.result.Result`)."""

from __future__ import annotations

from pathlib import Path

from ..result import REQUIRED, Result

#: a run read back from its folder is a :class:`~gpc_bench.result.Result`
Run = Result

__all__ = ["REQUIRED", "Run", "load_run"]


def load_run(path: str | Path) -> Result:
    """Open a run folder (it must hold ``summary.json``)."""
    return Result.read(path)
