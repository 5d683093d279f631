"""Read a run folder written by ``gpc-bench score``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .._errors import InputError


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
        if name.endswith(".parquet"):
            return pd.read_parquet(p)
        return pd.read_csv(p, keep_default_na=True)

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


def load_run(path: str | Path) -> Run:
    """Open a run folder (it must hold ``summary.json``)."""
    path = Path(path)
    p = path / "summary.json"
    if not p.is_file():
        raise InputError(
            f"{path} is not a gpc-bench run folder (no summary.json)",
            "give folders written by 'gpc-bench score --out DIR'",
        )
    return Run(path, json.loads(p.read_text()))
