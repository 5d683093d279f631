"""``gpc-bench demo``: a synthetic cohort, three models, scored end to end, offline."""

from __future__ import annotations

import logging
from pathlib import Path

from .io.gmt import GeneSet, write_gmt
from .io.runfolder import dumps_json

logger = logging.getLogger(__name__)

MODELS = ("good", "partial", "noisy", "mean")


def write_cohort(out: Path, seed: int = 0, **kwargs) -> dict[str, Path]:
    """Write the synthetic cohort as h5ad files and a pathway collection folder."""
    from .io.gmt import collection_id
    from .synth import make_cohort

    cohort = make_cohort(seed=seed, **kwargs)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"truth": out / "truth.h5ad", "pathways": out / "pathways"}
    cohort.truth.write_h5ad(paths["truth"])
    for name, adata in cohort.predictions.items():
        paths[name] = out / f"pred_{name}.h5ad"
        adata.write_h5ad(paths[name])
    paths["pathways"].mkdir(exist_ok=True)
    all_sets = []
    for coll, sets in cohort.gene_sets.items():
        gs = [GeneSet(coll, n, tuple(g), "synthetic") for n, g in sets.items()]
        write_gmt(paths["pathways"] / f"{coll}.gmt", gs)
        all_sets += gs
    (paths["pathways"] / "manifest.json").write_text(
        dumps_json({"collection_id": collection_id(all_sets), "source": "gpc_bench.synth", "seed": seed})
    )
    return paths


def demo(out: str | Path = "gpc-demo", seed: int = 0, overwrite: bool = True, extras: bool = True):
    """Build the demo cohort, score the demo models and return their headline table.

    With ``extras`` it also writes what the README walks through: ``leaderboard.csv`` (with
    ``mean`` marked as a control), ``scatter.png`` (partial against good) and ``report.html``.

    Returns
    -------
    pandas.DataFrame
        One row per model: HVG macro/micro and GPC Hallmark/GO.
    """
    import pandas as pd

    from .io.runfolder import check_out, write_marker
    from .scoring import score

    out = Path(out)  # a folder of its own: any other folder is refused, even with overwrite
    check_out(out, kind="demo", overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, "demo")
    paths = write_cohort(out / "data", seed=seed)
    rows = []
    # one line per model, not per WSI, unless -v (debug)
    noisy = [logging.getLogger(f"gpc_bench.{n}") for n in ("scoring", "_per_wsi", "io.align", "io.runfolder")]
    levels = [lg.level for lg in noisy]
    if not logging.getLogger("gpc_bench").isEnabledFor(logging.DEBUG):
        for lg in noisy:
            lg.setLevel(logging.WARNING)
    try:
        results = {
            name: score(
                paths[name],
                paths["truth"],
                pathways=paths["pathways"],
                name=name,
                cluster="wsi",
                out=out / "runs" / name,
                overwrite=overwrite,
            )
            for name in MODELS
        }
    finally:
        for lg, lv in zip(noisy, levels, strict=True):
            lg.setLevel(lv)
    for name, res in results.items():
        logger.info("scored %s -> %s", name, out / "runs" / name)
        h = res.headline
        rows.append(
            {
                "model": name,
                "hvg_pcc_macro": h["hvg_pcc_macro"],
                "hvg_pcc_micro": h["hvg_pcc_micro"],
                "gpc_hallmark": h["gpc_hallmark"],
                "gpc_go": h["gpc_go"],
                "ami": h.get("ami"),
            }
        )
    if extras:
        _extras(out, seed)
    return pd.DataFrame(rows)


def _extras(out: Path, seed: int) -> None:
    """Leaderboard, one scatter and the report on the demo runs."""
    from .compare import leaderboard
    from .plot import save, scatter
    from .report import report

    runs = [out / "runs" / m for m in MODELS]
    lb = leaderboard(runs, "good", seed=seed, controls=["mean"])
    lb.write(out / "leaderboard.csv", overwrite=True)
    fig = scatter(out / "runs" / "partial", out / "runs" / "good", label_top=3)
    save(fig, out / "scatter.png", overwrite=True)
    report(runs, out / "report.html", reference="good", seed=seed, controls=["mean"], title="gpc-bench demo",
           overwrite=True, board=lb)  # fmt: skip
    logger.info("wrote %s, %s and %s", out / "leaderboard.csv", out / "scatter.png", out / "report.html")
