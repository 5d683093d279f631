"""Read a run folder written by ``gpc-bench score``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .._errors import InputError

#: the columns each table must have for the readers (leaderboard, report, null, plots)
REQUIRED = {
    "pathway_scores.csv": ("collection", "pathway", "gpc", "variance_level"),
    "pathway_wsi_scores.csv": ("collection", "pathway", "sample_id", "score"),
    "hvg_scores.csv": ("sample_id", "cancer_type", "pcc"),
    "gene_variance.csv": ("gene", "variance"),
    "pathway_genes.csv": ("collection", "pathway", "gene"),
    "gene_scores.parquet": ("sample_id", "gene", "pcc"),
    "truth_moments.parquet": ("sample_id", "gene", "n_spots", "mean", "m2"),
}
_HINT = "the run folder is damaged; score the model again (gpc-bench score ... --out NEW)"


@dataclass
class Run:
    """A scored run read back from disk; tables load on first access."""

    path: Path
    summary: dict

    @property
    def name(self) -> str:
        return self.summary["model"]

    @property
    def config(self):
        """The :class:`~gpc_bench.config.ScoreConfig` the run was scored under."""
        from ..config import ScoreConfig

        if "config" not in self.summary:
            raise InputError(
                f"run folder {self.path} has no recorded config (scored by an older gpc-bench)",
                "re-run gpc-bench score",
            )
        return ScoreConfig.from_dict(self.summary["config"])

    def table(self, name: str):
        import pandas as pd

        p = self.path / name
        if not p.exists():
            raise InputError(f"run folder {self.path} has no {name}", "re-run gpc-bench score")
        try:
            df = pd.read_parquet(p) if name.endswith(".parquet") else pd.read_csv(p, keep_default_na=True)
        except Exception as err:  # truncated parquet, garbage CSV: any reader error
            raise InputError(f"{p} cannot be read: {type(err).__name__}: {str(err)[:200]}", _HINT) from None
        missing = [c for c in REQUIRED.get(name, ()) if c not in df.columns]
        if missing:
            raise InputError(f"{p} lacks the column(s) {missing}", _HINT)
        return df

    @property
    def pathway_scores(self):
        return self.table("pathway_scores.csv")

    @property
    def pathway_wsi_scores(self):
        return self.table("pathway_wsi_scores.csv")

    @property
    def hvg_scores(self):
        return self.table("hvg_scores.csv")

    @property
    def gene_variance(self):
        return self.table("gene_variance.csv")

    @property
    def gene_scores(self):
        return self.table("gene_scores.parquet")

    @property
    def truth_moments(self):
        """Per WSI and gene: spots, mean and M2 of the measured values (what the truth was)."""
        return self.table("truth_moments.parquet")

    @property
    def pathway_genes(self):
        return self.table("pathway_genes.csv")

    @cached_property
    def gene_keys(self) -> dict[str, str]:
        """Each recorded gene ID -> its canonical key, the HGNC symbol (the run's own mapping for
        pathway genes, the shipped table for the others; an ID without a symbol keeps itself), so
        that runs of Ensembl-keyed and symbol-keyed predictions share their genes. When two IDs map
        to one symbol only the first (in the run's gene order) keeps it."""
        import numpy as np

        from ..genes import detect_id_style, to_symbols

        genes = self.gene_variance["gene"].astype(str).tolist()
        ids = np.asarray(genes, dtype=object)
        sym = list(to_symbols(ids, detect_id_style(ids))) if genes else []
        own = {}
        if (self.path / "pathway_genes.csv").is_file():
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


def load_run(path: str | Path) -> Run:
    """Open a run folder (it must hold ``summary.json``)."""
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
    return Run(path, summary)
