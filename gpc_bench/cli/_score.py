"""``score``, ``merge``, ``convert`` and ``demo``."""

from __future__ import annotations

from pathlib import Path

import click

from .._cli_errors import SEED
from . import _OVERWRITE, _friendly, main

_ADAPTER_OPTIONS = [
    click.option("--embeddings", type=click.Path(path_type=Path), help="Adapters: HEST embedding .h5 folder (barcodes, loader order)."),
    click.option("--slide", type=click.Path(path_type=Path), multiple=True, help="stem: the held-out slide's .h5ad (spot order, barcodes); repeat per file, or a folder of <sample_id>.h5ad."),
    click.option("--genes", type=click.Path(path_type=Path), help="stem/stflow: gene list (selected_gene_list.txt, var_50genes.json)."),
    click.option("--n-draws", type=int, help="stem: draws per spot K."),
    click.option("--sample-id", help="stem: the slide's sample id (default: the slide file stem)."),
    click.option("--samples", type=click.Path(path_type=Path), help="stflow: CSV sample_id,n_spots in loader order."),
    click.option("--pattern", default="pred_{sample_id}.h5ad", show_default=True, help="stpath-h5ad: file names in the folder."),
]  # fmt: skip
_ADAPTER_KEYS = ("embeddings", "slide", "genes", "n_draws", "sample_id", "samples", "pattern")
_FORMATS = click.Choice(["stpath-h5ad", "stpath-results", "histoprism", "stem", "stflow"])


def _adapter_options(fn):
    for opt in reversed(_ADAPTER_OPTIONS):
        fn = opt(fn)
    return fn


@main.command("score")
@click.argument("predictions", type=click.Path(path_type=Path))
@click.option(
    "--truth",
    type=click.Path(path_type=Path),
    help="Measured expression .h5ad (default: layers['truth'] of PREDICTIONS).",
)
@click.option(
    "--pathways",
    multiple=True,
    help="GMT file or collection folder (repeatable; NAME=FILE.gmt names a collection). Default: the shipped collection.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Run folder to write.")
@click.option("--name", help="Model name (default: the predictions file stem).")
@click.option(
    "--constant-prediction",
    type=click.Choice(["zero", "exclude"]),
    default="zero",
    show_default=True,
    help="r for genes whose prediction is constant in a WSI.",
)
@click.option(
    "--min-genes",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Minimum scored genes for a pathway score.",
)
@click.option(
    "--variance-bins",
    type=click.Choice(["quantile", "log"]),
    default="quantile",
    show_default=True,
    help="Variance levels: equal-count (quantile) or equal-width in log10 variance (log).",
)
@click.option(
    "--levels",
    "n_levels",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Number of variance levels.",
)
@click.option(
    "--hvg",
    default="50",
    show_default=True,
    help="Top-N HVGs per cancer type, or a JSON list / folder of <CANCER>.json or <CANCER>/var_50genes.json.",
)
@click.option(
    "--hvg-map",
    "hvg_map",
    multiple=True,
    metavar="TYPE=LIST",
    help="Read cancer type TYPE's HVGs from list LIST (e.g. BRCA=IDC); repeat, or separate by commas.",
)
@click.option(
    "--cluster",
    type=click.Choice(["none", "wsi", "spot"]),
    default="none",
    show_default=True,
    help="Clustering agreement with cancer types.",
)
@click.option(
    "--cluster-spots",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Spots subsampled for --cluster spot.",
)
@click.option("--truth-log1p", is_flag=True, help="Raw counts as truth: apply log1p only (no normalisation).")
@click.option(
    "--truth-normalize",
    type=float,
    default=None,
    help="Raw counts as truth: scale each spot to this total (e.g. 1e4), then log1p.",
)
@click.option(
    "--activity",
    type=click.Choice(["mean-z", "ulm", "aucell"]),
    is_flag=False,
    flag_value="mean-z",
    default=None,
    help="Also compute pathway activity maps of truth and predictions and their correlation, PAC: mean-z "
    "(the default when given alone), or decoupler's ulm / aucell (extra 'activity'); spot-level, see "
    "docs/performance.md for its cost.",
)
@click.option(
    "--spatial",
    is_flag=True,
    help="Also compute Moran's I of every gene, measured and predicted, on a 6-nearest-neighbour spot graph "
    "(obsm['spatial']), and spatial recall (docs/metrics.md).",
)
@click.option(
    "--domains",
    type=click.Choice(["auto", "leiden", "kmeans"]),
    is_flag=False,
    flag_value="auto",
    default=None,
    help="Also cluster each WSI's measured and predicted spots into tissue domains (PCA, then Leiden, or "
    "k-means without leidenalg) and report ARI, AMI, NMI, homogeneity, completeness (docs/metrics.md).",
)
@click.option(
    "--domain-key",
    default=None,
    help="Truth obs column of a spot annotation (e.g. pathologist regions): also score the measured and "
    "predicted domains against it (implies --domains).",
)
@click.option(
    "--domain-clusters",
    type=click.IntRange(min=2),
    default=7,
    show_default=True,
    help="Clusters per WSI with --domains kmeans.",
)
@click.option(
    "--depth-key",
    default=None,
    help="Truth obs column used as given as the depth covariate (default: log1p(total_counts), "
    "else log1p(genes detected); docs/metrics.md).",
)
@click.option(
    "--seed", type=SEED, default=0, show_default=True, help="Seed of the clustering and spot subsample."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, exists=True),
    help="Score under a recorded config (a run's summary.json, or a JSON config); options given here override it.",
)
@click.option("--no-checksum", is_flag=True, help="Skip sha256 of the input files.")
@click.option(
    "--threads", type=click.IntRange(min=1), default=None, help="Kernel threads (default: usable cores)."
)
@click.option(
    "--protocol",
    type=click.Choice(["default", "published", "hest-pooled", "stpath-pooled"]),
    default="default",
    show_default=True,
    help="published: the HistoPrism paper's computation (needs --hvg FOLDER and --pathways); "
    "hest-pooled: gene r over all spots of each test split (--splits), as HEST-Benchmark; "
    "stpath-pooled: over all spots of each cancer type, as STPath's 'all' (docs/metrics.md).",
)
@click.option(
    "--splits",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="With --protocol hest-pooled: CSV sample_id,split of HEST-Benchmark's test splits "
    "(default: each WSI its own split).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing run folder.")
@click.option(
    "--shard",
    metavar="K/N",
    help="Score only shard K of N (every N-th WSI by sample id) into a partial folder for `gpc-bench merge`.",
)
@click.option(
    "--from",
    "fmt",
    type=_FORMATS,
    help="PREDICTIONS is another model's file: convert it first (docs/adapters.md).",
)
@_adapter_options
@click.option(
    "--gene-pcc",
    "gene_pcc",
    is_flag=True,
    help="PREDICTIONS is a folder of per-gene correlation tables (HEST, STFlow, HistoPrism JSON; docs/adapters.md).",
)
@click.option(
    "--gene-variance",
    type=click.Path(path_type=Path),
    help="With --gene-pcc: a run folder of the same truth, for the variance levels (or give --truth).",
)
@click.option(
    "--cancer-types",
    type=click.Path(path_type=Path),
    help="With --gene-pcc: CSV sample_id,cancer_type (default: one type).",
)
@click.pass_context
@_friendly
def score_cmd(
    ctx, predictions, truth, out, name, config_file, no_checksum, threads, overwrite, shard, fmt, gene_pcc,
    gene_variance, cancer_types, **options,
):  # fmt: skip
    """Score PREDICTIONS (.h5ad) against measured expression and write a run folder."""
    from ..config import ScoreConfig
    from ..io.runfolder import check_out_dir
    from ..scoring import score

    adapter = {k: options.pop(k) for k in _ADAPTER_KEYS}
    if shard is not None and (fmt is not None or gene_pcc):
        from .._errors import InputError

        raise InputError(
            "--shard scores a predictions .h5ad; it does not combine with --from or --gene-pcc",
            "convert once (gpc-bench convert ... --out PRED.h5ad), then score PRED.h5ad --shard K/N",
        )
    # the output first: a wrong one must cost neither a conversion nor a scoring pass
    check_out_dir(
        out, overwrite, inputs=[predictions, truth, *options["pathways"], gene_variance],
        kind="run" if shard is None else "shard",
    )  # fmt: skip
    conversion = None
    if fmt is not None:
        from ..baselines.adapters import convert

        conversion = convert(fmt, predictions, truth=truth, **adapter)
        name = name or Path(predictions).stem

    options["pathways"] = tuple(options["pathways"]) or None
    options["hvg_map"] = tuple(options["hvg_map"]) or None
    options["splits"] = None if options["splits"] is None else str(options["splits"])
    from ..config import FIXED  # a protocol's fixed values, unless given (then checked)

    given = click.core.ParameterSource.COMMANDLINE
    fixed = FIXED.get(options["protocol"], {})
    options |= {k: v for k, v in fixed.items() if ctx.get_parameter_source(k) != given}
    base = ScoreConfig()
    if config_file is not None:
        base = ScoreConfig.from_file(config_file)
        given = click.core.ParameterSource.COMMANDLINE
        options = {k: v for k, v in options.items() if ctx.get_parameter_source(k) == given}
        if "protocol" in options:  # a protocol given here brings its fixed values, unless given too
            options = FIXED.get(options["protocol"], {}) | options
    if gene_pcc:  # correlations only: GPC from the given r
        from ..scoring_pcc import score_correlations

        res = score_correlations(
            predictions, config=base.replace(**options), name=name, cancer_types=cancer_types,
            gene_variance=gene_variance, truth=truth, out=out, overwrite=overwrite,
        )  # fmt: skip
        _print_headline(res, out)
        return
    if shard is not None:
        from ..scoring import collect

        stats = collect(
            predictions, truth, config=base.replace(**options), name=name, checksum=not no_checksum,
            settings=_settings(threads), shard=shard, out=out, overwrite=overwrite,
        )  # fmt: skip
        click.echo(f"shard          {shard}: {stats.n_wsi} WSIs, {int(stats.n_spots.sum()):,} spots")
        click.echo(f"shard folder   {out}  (gpc-bench merge PART... --out RUN)")
        return
    res = score(
        predictions if conversion is None else conversion.adata,
        truth,
        config=base.replace(**options),
        name=name,
        checksum=not no_checksum,
        threads=threads,
        out=out if conversion is None else None,
        overwrite=overwrite,
    )
    if conversion is not None:  # the run records what was converted, and from what
        res.summary["conversion"] = conversion.report
        res.summary["warnings"] = [*res.summary["warnings"], *conversion.report.get("warnings", [])]
        res.write(out, overwrite=overwrite, inputs=[predictions, truth])
    _print_headline(res, out)


def _settings(threads):
    from ..settings import Settings

    return Settings.from_env(threads=threads)


@main.command("merge")
@click.argument("parts", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Run folder to write.")
@_OVERWRITE
@_friendly
def merge_cmd(parts, out, overwrite):
    """Merge the shard folders of `score --shard K/N` into one run folder (identical to one score)."""
    from ..merge import merge

    res = merge(list(parts), out=out, overwrite=overwrite)
    _print_headline(res, out)


def _print_headline(res, out) -> None:
    h = res.headline
    click.echo(f"model          {res.summary['model']}")
    click.echo(f"hvg_pcc_macro  {_fmt(h['hvg_pcc_macro'])}")
    click.echo(f"hvg_pcc_micro  {_fmt(h['hvg_pcc_micro'])}")
    cov = h.get("coverage") or {}
    for coll, val in h["gpc"].items():
        c = cov.get(coll)
        scored = f"  ({c['n_scored']} of {c['n_pathways']} pathways scored)" if c else ""
        click.echo(f"gpc_{coll:<10} {_fmt(val)}{scored}")
    if "gpc_depth_adjusted" in h:  # raw, what depth alone scores, and what remains beyond it
        for coll in h["gpc"]:
            click.echo(
                f"  depth        baseline {_fmt(h['gpc_depth_baseline'].get(coll))}, "
                f"adjusted {_fmt(h['gpc_depth_adjusted'].get(coll))} ({coll})"
            )
    if "ami" in h:
        click.echo(f"ami / ari      {_fmt(h['ami'])} / {_fmt(h['ari'])}")
    if res.summary["warnings"]:
        click.echo(f"warnings       {len(res.summary['warnings'])} (above; recorded in summary.json)")
    click.echo(f"run folder     {out}")


def _fmt(v) -> str:
    return "n/a" if v is None or v != v else f"{v:.4f}"


@main.command("convert")
@click.argument("source", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option(
    "--from", "fmt", type=_FORMATS, required=True, help="The format SOURCE was written in (docs/adapters.md)."
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Prediction .h5ad to write.")
@click.option(
    "--truth", type=click.Path(path_type=Path), help="Truth .h5ad: each WSI's barcodes in file order."
)
@_adapter_options
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@_friendly
def convert_cmd(source, fmt, out, truth, overwrite, **adapter):
    """Convert another model's prediction file into the format `gpc-bench score` reads.

    SOURCE is one file or folder; for --from stem, one file per slide (each with its --slide, in
    order), or a folder of <sample_id>/generated_samples_*.pt with --slide a folder of slides.
    """
    from .._errors import InputError
    from ..baselines.adapters import convert
    from ..io.runfolder import check_files

    if len(source) > 1 and fmt != "stem":
        raise InputError(f"--from {fmt} converts one SOURCE, not {len(source)}", "convert one file at a time")
    slides = adapter.get("slide") or ()
    inputs = [*source, truth, *slides, *(v for v in adapter.values() if isinstance(v, Path))]
    source = source[0] if len(source) == 1 else list(source)
    check_files(out.parent, [out.name, out.name + ".conversion.json"], kind="predictions",
                overwrite=overwrite, inputs=inputs)  # fmt: skip
    conv = convert(fmt, source, truth=truth, **adapter)
    conv.write(out, overwrite=overwrite, inputs=inputs)
    r = conv.report
    click.echo(f"predictions    {out}: {r['n_spots']} spots x {r['n_genes']} genes from {r['n_wsi']} WSI(s)")
    click.echo(f"spot order     {r['spot_order']}; truth: {r['truth']}; report {out}.conversion.json")


@main.command("demo")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("gpc-demo"),
    show_default=True,
    help="Folder for the demo cohort, runs and figures.",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the synthetic cohort.")
@_friendly
def demo_cmd(out, seed):
    """Build a synthetic cohort, score four demo models and print their headline numbers."""
    from .._demo import demo

    table = demo(out, seed=seed)
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    click.echo(f"\nrun folders in {out / 'runs'}")
    click.echo(
        f"leaderboard {out / 'leaderboard.csv'}, figure {out / 'scatter.png'}, report {out / 'report.html'}"
    )
