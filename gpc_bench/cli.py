"""The ``gpc-bench`` command line: each command parses options and calls the API."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from ._cli_errors import SEED, friendly
from ._version import __version__

logger = logging.getLogger("gpc_bench")


def _setup_logging(verbosity: int) -> None:
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("gpc-bench: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


_friendly = friendly


_OVERWRITE = click.option(
    "--overwrite", is_flag=True, help="Replace an existing output that gpc-bench wrote (never anything else)."
)

_GLOBAL_FLAGS = {"-q", "--quiet", "-v", "--verbose"}


class _Group(click.Group):
    """The top-level group: its -q/-v may also come after the subcommand (``gpc-bench score -q``)."""

    def parse_args(self, ctx, args):
        if ctx.parent is None:
            front, rest = [], []
            for i, a in enumerate(args):
                if a == "--":
                    rest.extend(args[i:])
                    break
                (front if a in _GLOBAL_FLAGS else rest).append(a)
            args = front + rest
        return super().parse_args(ctx, args)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gpc-bench")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.option("-v", "--verbose", is_flag=True, help="Debug output.")
def main(quiet: bool, verbose: bool) -> None:
    """gpc-bench: does a histology-to-expression model recover pathways, not just a few genes?"""
    _setup_logging(0 if quiet else (2 if verbose else 1))


_ADAPTER_OPTIONS = [
    click.option("--embeddings", type=click.Path(path_type=Path), help="Adapters: HEST embedding .h5 folder (barcodes, loader order)."),
    click.option("--slide", type=click.Path(path_type=Path), help="stem: the held-out slide's .h5ad (spot order, barcodes)."),
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
    help="Top-N HVGs per cancer type, or a JSON list / folder of <CANCER>.json.",
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
    type=click.Choice(["default", "published", "hest-pooled"]),
    default="default",
    show_default=True,
    help="published: the HistoPrism paper's computation (needs --hvg FOLDER and --pathways); "
    "hest-pooled: gene r over all spots of each cancer type, as HEST-Benchmark (docs/metrics.md).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing run folder.")
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
    ctx, predictions, truth, out, name, config_file, no_checksum, threads, overwrite, fmt, gene_pcc,
    gene_variance, cancer_types, **options,
):  # fmt: skip
    """Score PREDICTIONS (.h5ad) against measured expression and write a run folder."""
    from .config import ScoreConfig
    from .io.runfolder import check_out_dir
    from .scoring import score

    adapter = {k: options.pop(k) for k in _ADAPTER_KEYS}
    # the output first: a wrong one must cost neither a conversion nor a scoring pass
    check_out_dir(out, overwrite, inputs=[predictions, truth, *options["pathways"], gene_variance])
    conversion = None
    if fmt is not None:
        from .baselines.adapters import convert

        conversion = convert(fmt, predictions, truth=truth, **adapter)
        name = name or Path(predictions).stem

    options["pathways"] = tuple(options["pathways"]) or None
    if options["protocol"] == "published":  # its fixed values, unless given (then checked)
        from .config import PUBLISHED

        given = click.core.ParameterSource.COMMANDLINE
        options |= {k: v for k, v in PUBLISHED.items() if ctx.get_parameter_source(k) != given}
    base = ScoreConfig()
    if config_file is not None:
        base = ScoreConfig.from_file(config_file)
        given = click.core.ParameterSource.COMMANDLINE
        options = {k: v for k, v in options.items() if ctx.get_parameter_source(k) == given}
    if gene_pcc:  # correlations only: GPC from the given r
        from .scoring_pcc import score_correlations

        res = score_correlations(
            predictions, config=base.replace(**options), name=name, cancer_types=cancer_types,
            gene_variance=gene_variance, truth=truth, out=out, overwrite=overwrite,
        )  # fmt: skip
        _print_headline(res, out)
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
        res.write(out, overwrite=overwrite, inputs=[predictions, truth])
    _print_headline(res, out)


def _print_headline(res, out) -> None:
    h = res.headline
    click.echo(f"model          {res.summary['model']}")
    click.echo(f"hvg_pcc_macro  {_fmt(h['hvg_pcc_macro'])}")
    click.echo(f"hvg_pcc_micro  {_fmt(h['hvg_pcc_micro'])}")
    for coll, val in h["gpc"].items():
        click.echo(f"gpc_{coll:<10} {_fmt(val)}")
    if "ami" in h:
        click.echo(f"ami / ari      {_fmt(h['ami'])} / {_fmt(h['ari'])}")
    if res.summary["warnings"]:
        click.echo(f"warnings       {len(res.summary['warnings'])} (above; recorded in summary.json)")
    click.echo(f"run folder     {out}")


def _fmt(v) -> str:
    return "n/a" if v is None or v != v else f"{v:.4f}"


@main.command("curate")
@click.option("--hallmark", type=click.Path(path_type=Path), help="MSigDB h.all.*.gmt")
@click.option("--go", multiple=True, type=click.Path(path_type=Path), help="MSigDB GO GMT (repeatable).")
@click.option("--go-obo", type=click.Path(path_type=Path), help="GO OBO (with --go-annotations).")
@click.option("--go-annotations", type=click.Path(path_type=Path), help="NCBI gene2go or GAF.")
@click.option("--universe", type=click.Path(path_type=Path), help="Genes: .h5ad, text file or JSON.")
@click.option(
    "--min-size",
    type=int,
    default=50,
    show_default=True,
    help="Smallest set kept (genes, after the universe).",
)
@click.option(
    "--max-size",
    type=int,
    default=100,
    show_default=True,
    help="Largest set kept (genes, after the universe).",
)
@click.option(
    "--jaccard", type=float, default=0.1, show_default=True, help="Jaccard redundancy threshold tau."
)
@click.option(
    "--prune-order",
    type=click.Choice(["largest-first", "smallest-first"]),
    default="largest-first",
    show_default=True,
    help="Which sets pruning keeps first (docs/curation.md).",
)
@click.option(
    "--go-namespaces", default="BP,CC,MF", show_default=True, help="GO namespaces to keep (comma-separated)."
)
@click.option(
    "--go-evidence-exclude", default="ND", show_default=True, help="Comma-separated evidence codes to drop."
)
@click.option(
    "--msigdb-release", help="Download h.all (and c5.go) of this MSigDB release, e.g. 2025.1 (cached)."
)
@click.option(
    "--go-release", help="Download go-basic.obo + goa_human.gaf: 'current' or a date YYYY-MM-DD (cached)."
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Collection folder to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
@_friendly
def curate_cmd(
    hallmark,
    go,
    go_obo,
    go_annotations,
    universe,
    min_size,
    max_size,
    jaccard,
    prune_order,
    go_namespaces,
    go_evidence_exclude,
    msigdb_release,
    go_release,
    out,
    overwrite,
):
    """Curate Hallmark + GO pathways (size filter, Jaccard pruning) into a collection folder."""
    from .curation import curate

    res = curate(
        hallmark,
        list(go),
        go_obo=go_obo,
        go_annotations=go_annotations,
        universe=universe,
        min_size=min_size,
        max_size=max_size,
        jaccard=jaccard,
        prune_order=prune_order,
        go_namespaces=tuple(x for x in go_namespaces.split(",") if x),
        go_evidence_exclude=tuple(x for x in go_evidence_exclude.split(",") if x),
        msigdb_release=msigdb_release,
        go_release=go_release,
        out=out,
        overwrite=overwrite,
    )
    click.echo(f"hallmark {len(res.hallmark)}  go {len(res.go)}  {res.manifest['collection_id']}  -> {out}")


@main.group("pathways")
def pathways_grp() -> None:
    """Inspect a pathway collection (default: the shipped gpc-default)."""


_PATHWAYS_OPT = click.option(
    "--pathways",
    "spec",
    multiple=True,
    help="GMT file or collection folder (default: the shipped collection).",
)


@pathways_grp.command("import")
@click.argument("source", type=click.Choice(["histoprism"]))
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Collection folder to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing folder.")
@_friendly
def pathways_import(source, files, out, overwrite):
    """Import published pathway sets (HistoPrism's released pickles) as a collection folder."""
    from .curation.histoprism import import_histoprism

    m = import_histoprism(files, out, overwrite=overwrite)
    counts = ", ".join(f"{n} {c}" for c, n in m["collections"].items())
    click.echo(f"collection     {out} ({counts}; {m['collection_id']})")


@pathways_grp.command("list")
@_PATHWAYS_OPT
@click.option("--collection", help="Only this collection (hallmark, go, ...).")
@_friendly
def pathways_list(spec, collection):
    """Print every set with its size, after the collection's provenance."""
    from .curation.catalog import list_pathways, provenance
    from .io.gmt import load_pathways

    spec = list(spec) or None
    for line in provenance(load_pathways(spec)):
        click.echo(f"# {line}")
    table = list_pathways(spec)
    if collection:
        table = table[table["collection"] == collection]
    click.echo(table.to_string(index=False, max_colwidth=60))


@pathways_grp.command("show")
@click.argument("name")
@_PATHWAYS_OPT
@_friendly
def pathways_show(name, spec):
    """Print one set: its genes, size, description and curation record."""
    from .curation.catalog import show_pathway

    info = show_pathway(name, list(spec) or None)
    click.echo(f"{info['pathway']}  ({info['collection']}, {info['size']} genes)  {info['description']}")
    if info["curation"]:
        c = info["curation"]
        state = "kept" if c["kept"] else f"removed: Jaccard {c['jaccard']:.3f} with {c['conflict']}"
        click.echo(f"curation: {c['namespace']}, size {c['size']}, {state}")
    click.echo(" ".join(info["genes"]))


def _compare_options(fn):
    """Options shared by the commands that compare runs (leaderboard, report)."""
    for opt in reversed(
        [
            click.option(
                "--intersect",
                is_flag=True,
                help="Compare what all runs share (WSIs, genes, pathways; scores recomputed) instead of refusing.",
            ),
            click.option(
                "--control",
                "controls",
                multiple=True,
                help="Mark a model as a control (not ranked; repeatable).",
            ),
            click.option(
                "--bootstrap",
                "n_boot",
                type=click.IntRange(min=0),
                default=1000,
                show_default=True,
                help="Bootstrap draws over WSIs (0: none).",
            ),
            click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the bootstrap."),
        ]
    ):
        fn = opt(fn)
    return fn


@main.command("leaderboard")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Wide CSV to write (long table, comparison and provenance go next to it).",
)
@click.option("--reference", help="Model to compare against (default: the first run that is not a control).")
@_compare_options
@click.option(
    "--rank-by", default="mean-rank", show_default=True, help="mean-rank, or a column such as gpc_go."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "md"]),
    default="table",
    show_default=True,
    help="Terminal table or Markdown.",
)
@click.option(
    "--protocol",
    type=click.Choice(["default", "published", "hest-pooled"]),
    help="Refuse runs not scored under this protocol (published: the HistoPrism paper's computation).",
)
@_OVERWRITE
@_friendly
def leaderboard_cmd(
    runs, out, reference, intersect, controls, n_boot, seed, rank_by, fmt, protocol, overwrite
):
    """Rank the models of several run folders, with bootstrap intervals, win rates and tests."""
    from .compare import leaderboard
    from .compare.leaderboard import leaderboard_files
    from .io.runfolder import check_files

    if out is not None:
        check_files(Path(out).parent, leaderboard_files(out), kind="leaderboard", overwrite=overwrite,
                    inputs=runs)  # fmt: skip

    lb = leaderboard(
        list(runs),
        reference,
        n_boot=n_boot,
        seed=seed,
        intersect=intersect,
        controls=controls,
        rank_by=rank_by,
        protocol=protocol,
    )
    if out is not None:
        lb.write(out, overwrite=overwrite, inputs=runs)
    if fmt == "md":
        click.echo(lb.to_markdown(), nl=False)
    else:
        click.echo(lb.display().to_string(index=False))
        draws = lb.info["n_boot"]
        click.echo(
            f"reference: {lb.info['reference']}; "
            + (f"95% intervals from {draws} WSI bootstrap draws" if draws else "no intervals")
        )
    for note in lb.info["notes"]:
        click.echo(f"note: {note}", err=True)
    for model, warnings in lb.info["warnings"].items():
        for w in warnings:
            click.echo(f"warning ({model}): {w}", err=True)


@main.command("null")
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "--draws",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Random gene sets per pathway.",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the random gene sets.")
@click.option(
    "--out", type=click.Path(path_type=Path), help="Folder for pathway_null.csv/.json (default: RUN)."
)
@_OVERWRITE
@_friendly
def null_cmd(run, draws, seed, out, overwrite):
    """Is each pathway predicted better than variance-matched random gene sets? Writes pathway_null.csv."""
    from .compare.null import pathway_null
    from .io.runfolder import check_files

    check_files(out or run, ["pathway_null.csv", "pathway_null.json"], kind="null", overwrite=overwrite)
    res = pathway_null(run, n_draws=draws, seed=seed)
    path = res.write(out or run, overwrite=overwrite)
    t = res.table.dropna(subset=["z"])
    click.echo(f"{len(t)} pathways, {draws} draws each; z > 2 for {int((t['z'] > 2).sum())}  -> {path}")


@main.command("controls")
@click.argument("truth", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for control-*.h5ad.")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(["shuffle", "type-mean", "noise"]),
    help="Controls to write (repeatable; default: all).",
)
@click.option(
    "--snr", default="0.25,1,4", show_default=True, help="Comma-separated SNRs of the noise ladder."
)
@click.option("--layer", help="Read measured expression from layers[LAYER] instead of X.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the shuffles and noise.")
@click.option("--overwrite", is_flag=True, help="Replace existing control files.")
@_friendly
def controls_cmd(truth, out, kinds, snr, layer, seed, overwrite):
    """Write control predictions (shuffled spots, cancer-type mean, noise ladder) for TRUTH."""
    from .controls import KINDS, write_controls

    try:
        snrs = tuple(float(s) for s in snr.split(",") if s.strip())
    except ValueError:
        raise click.BadParameter(f"not a list of numbers: {snr!r}", param_hint="--snr") from None
    paths = write_controls(
        truth, out, kinds=kinds or KINDS, snr=snrs, seed=seed, layer=layer, overwrite=overwrite
    )
    for p in paths:
        click.echo(str(p))


@main.group("plot")
def plot_grp() -> None:
    """Figures (PNG, SVG or PDF by the --out extension)."""


def _OUT(fn):
    """``--out FIGURE`` and ``--overwrite``: the figure path is checked before any work, and the
    command's returned figure saved there."""
    import functools

    @functools.wraps(fn)
    @friendly
    def wrapper(*args, out, overwrite, **kwargs):
        from .io.runfolder import check_out
        from .plot import save

        inputs = [v for v in kwargs.values() if isinstance(v, Path)]
        inputs += [
            p for v in kwargs.values() if isinstance(v, tuple | list) for p in v if isinstance(p, Path)
        ]
        check_out(out, kind="figure", overwrite=overwrite, inputs=inputs, folder=False)
        fig = fn(*args, **kwargs)
        try:
            click.echo(f"figure         {save(fig, out, overwrite=overwrite, inputs=inputs)}")
        finally:
            import matplotlib.pyplot as plt

            plt.close(fig)

    wrapper = _OVERWRITE(wrapper)
    return click.option(
        "--out", type=click.Path(path_type=Path), required=True, help="Figure file: .png, .svg or .pdf."
    )(wrapper)


@plot_grp.command("scatter")
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@_OUT
@click.option(
    "--label-top",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Name the K pathways that differ most.",
)
@_friendly
def plot_scatter(run_a, run_b, label_top):
    """RUN_A's pathway GPC (y) against RUN_B's (x), coloured by variance level."""
    from .plot import scatter

    return scatter(run_a, run_b, label_top=label_top)


@plot_grp.command("levels")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@_OUT
@click.option("--control", "controls", multiple=True, help="Draw a model as a control (repeatable).")
@_friendly
def plot_levels(runs, controls):
    """GPC by variance level for several models (controls drawn apart)."""
    from .plot import levels

    return levels(list(runs), controls=controls)


@plot_grp.command("variance")
@click.argument("run", type=click.Path(path_type=Path))
@_OUT
@_friendly
def plot_variance(run):
    """Density of gene variance with the level thresholds."""
    from .plot import variance

    return variance(run)


@plot_grp.command("leaderboard")
@click.argument("table", type=click.Path(path_type=Path, exists=True))
@_OUT
@_friendly
def plot_leaderboard(table):
    """A leaderboard.csv as a table figure."""
    from .plot import leaderboard_table

    return leaderboard_table(table)


@plot_grp.command("spatial")
@click.argument("predictions", type=click.Path(path_type=Path))
@click.option("--truth", type=click.Path(path_type=Path), help="Measured .h5ad (default: layers['truth']).")
@click.option("--sample", required=True, help="The WSI (obs['sample_id']).")
@click.option("--pathway", required=True, help="Pathway name, e.g. HALLMARK_HYPOXIA.")
@click.option(
    "--pathways", "spec", multiple=True, help="GMT or collection folder (default: the shipped collection)."
)
@click.option("--image", type=click.Path(path_type=Path), help="H&E image that obsm['spatial'] indexes.")
@click.option(
    "--name", help="Model name for the title (default: the predictions file stem, as score names runs)."
)
@click.option(
    "--spot-size", type=float, default=30.0, show_default=True, help="Marker size of a spot (points^2)."
)
@_OUT
@_friendly
def plot_spatial(predictions, truth, sample, pathway, spec, image, spot_size, name):
    """Measured and predicted pathway activity side by side on the tissue."""
    from .plot import spatial

    return spatial(
        predictions,
        truth,
        sample=sample,
        pathway=pathway,
        pathways=list(spec) or None,
        image=image,
        spot_size=spot_size,
        name=name,
    )


@main.command("report")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="HTML file to write.")
@click.option("--reference", help="Model to compare against (default: the first run that is not a control).")
@_compare_options
@click.option("--title", default="gpc-bench report", show_default=True, help="Title of the report.")
@_OVERWRITE
@_friendly
def report_cmd(runs, out, reference, intersect, controls, n_boot, seed, title, overwrite):
    """One self-contained HTML report: leaderboard, figures, provenance, metric explanations."""
    from .report import report

    click.echo(
        str(
            report(
                list(runs),
                out,
                reference=reference,
                n_boot=n_boot,
                seed=seed,
                intersect=intersect,
                controls=controls,
                title=title,
                overwrite=overwrite,
            )
        )
    )


@main.command("convert")
@click.argument("source", type=click.Path(path_type=Path, exists=True))
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
    """Convert another model's prediction file into the format `gpc-bench score` reads."""
    from .baselines.adapters import convert
    from .io.runfolder import check_files

    inputs = [source, truth, *(v for v in adapter.values() if isinstance(v, Path))]
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
    from ._demo import demo

    table = demo(out, seed=seed)
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    click.echo(f"\nrun folders in {out / 'runs'}")
    click.echo(
        f"leaderboard {out / 'leaderboard.csv'}, figure {out / 'scatter.png'}, report {out / 'report.html'}"
    )


def _add_model_commands() -> None:
    from gpc_bench.baselines.histoprism.cli import model_grp

    main.add_command(model_grp)


_add_model_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
