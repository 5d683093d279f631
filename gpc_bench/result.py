"""One result type: the tables, ``summary.json`` and statistics of a run, in memory or in its folder.

:func:`gpc_bench.score`, :func:`gpc_bench.merge` and :func:`gpc_bench.evaluate.evaluate` return a
:class:`Result`; :meth:`Result.read` opens a run folder as one. compare, plot and report accept
either. Tables are :class:`pandas.DataFrame` built on first access (in memory, from the Arrow-ready
columns; on disk, read and checked).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import InputError
from ._tables import TABLE_FILES, TABLES
from .io.runfolder import atomic_dir, dumps_json

if TYPE_CHECKING:
    import pandas as pd

    from .config import ScoreConfig
    from .stats import WsiStats

logger = logging.getLogger(__name__)

#: the columns each table must have for the readers (leaderboard, report, null, plots)
REQUIRED = {
    "pathway_scores": ("collection", "pathway", "gpc", "variance_level"),
    "pathway_wsi_scores": ("collection", "pathway", "sample_id", "score"),
    "hvg_scores": ("sample_id", "cancer_type", "pcc"),
    "gene_variance": ("gene", "variance"),
    "pathway_genes": ("collection", "pathway", "gene"),
    "gene_scores": ("sample_id", "gene", "pcc"),
}
_HINT = "the run folder is damaged; score the model again (gpc-bench score ... --out NEW)"


def _key(name: str) -> str:
    """``pathway_scores.csv`` or ``pathway_scores`` -> ``pathway_scores``."""
    return name.rsplit(".", 1)[0] if name.endswith((".csv", ".parquet")) else name


def _table_property(name: str, doc: str) -> property:
    return property(lambda self: self.table(name), doc=doc)


class Result:
    """The tables (long format) and summary of one scoring run.

    Parameters
    ----------
    tables
        Table name -> :class:`gpc_bench._table.Table` (in memory), or ``None`` for a folder.
    summary, run_info
        ``summary.json`` and ``run_info.json``.
    stats
        The per-WSI statistics it was evaluated from (read from the folder on first use).
    path
        The run folder it was read from or written to.
    """

    def __init__(self, tables=None, summary=None, run_info=None, *, stats=None, path=None) -> None:
        if tables is not None:
            missing = set(TABLES) - set(tables)
            if missing:
                raise ValueError(f"missing tables: {sorted(missing)}")
        self.tables = tables
        self.summary = summary or {}
        self.run_info = run_info or {}
        self.path = None if path is None else Path(path)
        self._stats = stats
        self._frames: dict = {}

    # -- reading -----------------------------------------------------------------------------

    @classmethod
    def read(cls, path: str | Path) -> Result:
        """Open a run folder (it must hold ``summary.json``); tables load on first access."""
        path = Path(path)
        p = path / "summary.json"
        if not p.is_file():
            raise InputError(
                f"{path} is not a gpc-bench run folder (no summary.json)",
                "give folders written by 'gpc-bench score --out DIR'",
            )
        try:
            summary = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise InputError(f"{p} is not valid JSON: {err}", _HINT) from None
        if not isinstance(summary, dict) or not isinstance(summary.get("model"), str):
            raise InputError(f"{p} is not a gpc-bench run summary (no model name)", _HINT)
        for key in ("headline", "config", "counts"):
            if key in summary and not isinstance(summary[key], dict):
                raise InputError(f"{p}: {key} must be a JSON object", _HINT)
        return cls(None, summary, path=path)

    def has_table(self, name: str) -> bool:
        key = _key(name)
        if self.tables is not None:
            return key in self.tables
        return self.path is not None and (self.path / TABLE_FILES.get(key, name)).is_file()

    def table(self, name: str) -> pd.DataFrame:
        """A table as a DataFrame (``name`` with or without its file suffix)."""
        key = _key(name)
        if key not in self._frames:
            self._frames[key] = self._load(key, name)
        return self._frames[key]

    def _load(self, key: str, name: str):
        import pandas as pd

        if self.tables is not None:
            if key not in self.tables:
                raise InputError(f"the result has no table {key!r}")
            return self.tables[key].to_pandas()
        p = self.path / TABLE_FILES.get(key, name)
        if not p.exists():
            raise InputError(f"run folder {self.path} has no {p.name}", "re-run gpc-bench score")
        try:
            df = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p, keep_default_na=True)
        except Exception as err:  # truncated parquet, garbage CSV: any reader error
            raise InputError(f"{p} cannot be read: {type(err).__name__}: {str(err)[:200]}", _HINT) from None
        missing = [c for c in REQUIRED.get(key, ()) if c not in df.columns]
        if missing:
            raise InputError(f"{p} lacks the column(s) {missing}", _HINT)
        return df

    gene_scores = _table_property("gene_scores", "Per WSI and gene: r, spots and flag.")
    pathway_wsi_scores = _table_property("pathway_wsi_scores", "Per pathway and WSI: mean r of its genes.")
    pathway_scores = _table_property("pathway_scores", "Per pathway: GPC, its SD over WSIs, variance level.")
    pathway_genes = _table_property("pathway_genes", "The panel genes each pathway was matched to.")
    hvg_scores = _table_property("hvg_scores", "Per WSI: mean r of its cancer type's HVGs.")
    gene_variance = _table_property("gene_variance", "Per gene: variance over the cohort and its level.")
    variance_levels = _table_property("variance_levels", "Per level: bounds and counts.")

    @property
    def stats(self) -> WsiStats:
        """The per-WSI statistics (:class:`~gpc_bench.stats.WsiStats`)."""
        if self._stats is None:
            from .stats import read_stats

            if self.path is None:
                raise InputError("this result holds no per-WSI statistics")
            self._stats = read_stats(self.path)
        return self._stats

    @property
    def has_stats(self) -> bool:
        from .stats import FOLDER

        return self._stats is not None or (
            self.path is not None and (self.path / FOLDER / "meta.json").is_file()
        )

    @property
    def has_truth_moments(self) -> bool:
        """Whether the measured values' per-WSI moments are recorded (the leaderboard's truth check)."""
        return self.has_stats and self.stats.has_truth_moments

    @property
    def truth_moments(self) -> pd.DataFrame:
        """Per WSI and gene: spots, mean and M2 of the measured values (what the truth was)."""
        import numpy as np
        import pandas as pd

        s = self.stats
        n_wsi, n_genes = s.r.shape
        return pd.DataFrame(
            {
                "sample_id": np.repeat(np.asarray(s.sample_ids, dtype=object), n_genes),
                "gene": np.tile(s.genes.astype(str).astype(object), n_wsi),
                "n_spots": np.repeat(s.n_spots, n_genes),
                "mean": s.moments[:, 0].ravel(),
                "m2": s.moments[:, 1].ravel(),
            }
        )

    # -- summary -------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.summary["model"]

    @property
    def headline(self) -> dict:
        return self.summary["headline"]

    @property
    def config(self) -> ScoreConfig:
        """The :class:`~gpc_bench.config.ScoreConfig` the run was scored under."""
        from .config import ScoreConfig

        if "config" not in self.summary:
            raise InputError(
                f"run folder {self.path} has no recorded config (scored by an older gpc-bench)",
                "re-run gpc-bench score",
            )
        return ScoreConfig.from_dict(self.summary["config"])

    @cached_property
    def gene_keys(self) -> dict[str, str]:
        """Each recorded gene ID -> its canonical key, the HGNC symbol (the run's own mapping for
        pathway genes, the shipped table for the others; an ID without a symbol keeps itself), so
        that runs of Ensembl-keyed and symbol-keyed predictions share their genes. When two IDs map
        to one symbol only the first (in the run's gene order) keeps it."""
        import numpy as np

        from .genes import detect_id_style, to_symbols

        genes = self.gene_variance["gene"].astype(str).tolist()
        ids = np.asarray(genes, dtype=object)
        sym = list(to_symbols(ids, detect_id_style(ids))) if genes else []
        own = {}
        if self.has_table("pathway_genes"):
            pg = self.pathway_genes
            if "symbol" in pg.columns:
                pairs = zip(pg["gene"].astype(str), pg["symbol"], strict=True)
                own = {g: s for g, s in pairs if isinstance(s, str) and s}
        keys, taken = {}, set()
        for g, s in zip(genes, sym, strict=True):
            k = own.get(g) or s or g
            if k not in taken:
                keys[g] = k
                taken.add(k)
        return keys

    # -- writing -------------------------------------------------------------------------------

    def write(self, out: str | Path, overwrite: bool = False, inputs: Iterable = ()) -> Path:
        """Write every table, the statistics and the summary into ``out`` atomically (a temporary
        folder renamed into place). ``overwrite`` replaces only an earlier run folder, and never
        one that is or holds one of ``inputs`` (:mod:`gpc_bench.io.runfolder`)."""
        if self.tables is None:
            raise InputError("this result was read from a folder; it is written already", str(self.path))
        out = Path(out)
        with atomic_dir(out, overwrite=overwrite, kind="run", inputs=inputs) as tmp:
            for name, file in TABLE_FILES.items():
                table = self.tables[name]
                table.write_parquet(tmp / file) if file.endswith(".parquet") else table.write_csv(tmp / file)
            if self._stats is not None:
                self._stats.write(tmp)
            (tmp / "summary.json").write_text(dumps_json(self.summary))
            (tmp / "run_info.json").write_text(dumps_json(self.run_info))
        self.path = out
        logger.info("wrote %s", out)
        return out

    def __repr__(self) -> str:
        h = self.summary.get("headline", {})
        n_wsi = self.summary.get("counts", {}).get("n_wsi")
        return (
            f"Result(model={self.summary.get('model')!r}, n_wsi={n_wsi}, "
            f"gpc_hallmark={h.get('gpc_hallmark')}, gpc_go={h.get('gpc_go')}, "
            f"hvg_pcc_macro={h.get('hvg_pcc_macro')})"
        )


def as_result(run: str | Path | Result) -> Result:
    """A :class:`Result` as it is, or a run folder opened as one."""
    return run if isinstance(run, Result) else Result.read(run)


#: the name earlier versions gave :class:`Result`
ScoreResult = Result
