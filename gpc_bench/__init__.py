"""gpc-bench: Gene Pathway Coherence benchmark for histology-to-expression models.

The public API is imported lazily so that ``import gpc_bench`` stays cheap.
"""

from __future__ import annotations

import importlib
import logging

from ._errors import GpcBenchError, InputError
from ._version import __version__

logging.getLogger(__name__).addHandler(logging.NullHandler())


def _source_checkout() -> None:
    """Run from a source checkout (``python -m gpc_bench`` in the repository root shadows an
    installed copy): ``baselines/`` and ``pathways/``, installed as ``gpc_bench.baselines`` and
    ``gpc_bench.pathways``, sit next to the package there, so they are found the same way."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "baselines" / "__init__.py").is_file():
        if str(root) not in __path__:
            __path__.append(str(root))


_source_checkout()

_LAZY = {
    "score": "gpc_bench.scoring",
    "collect": "gpc_bench.scoring",
    "evaluate": "gpc_bench.evaluate",
    "merge": "gpc_bench.merge",
    "Result": "gpc_bench.result",
    "ScoreResult": "gpc_bench.result",
    "WsiStats": "gpc_bench.stats",
    "read_stats": "gpc_bench.stats",
    "ScoreConfig": "gpc_bench.config",
    "Settings": "gpc_bench.settings",
    "load_run": "gpc_bench.io.run",
    "load_pathways": "gpc_bench.io.gmt",
    "read_gmt": "gpc_bench.io.gmt",
    "make_cohort": "gpc_bench.synth",
    "demo": "gpc_bench._demo",
    "pearson_columns": "gpc_bench.metrics.pcc",
    "curate": "gpc_bench.curation",
    "CurationResult": "gpc_bench.curation",
}

__all__ = ["GpcBenchError", "InputError", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gpc_bench' has no attribute {name!r}")
