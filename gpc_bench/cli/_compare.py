"""Commands that compare runs: ``leaderboard``, ``null``, ``controls``, ``plot``, ``report``."""

from __future__ import annotations

from pathlib import Path

import click

from .._cli_errors import SEED, friendly
from . import _OVERWRITE, _friendly, main


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
    type=click.Choice(["default", "published", "hest-pooled", "stpath-pooled"]),
    help="Refuse runs not scored under this protocol (published: the HistoPrism paper's computation).",
)
@_OVERWRITE
@_friendly
def leaderboard_cmd(
    runs, out, reference, intersect, controls, n_boot, seed, rank_by, fmt, protocol, overwrite
):
    """Rank the models of several run folders, with bootstrap intervals, win rates and tests."""
    from ..compare import leaderboard
    from ..compare.leaderboard import leaderboard_files
    from ..io.runfolder import check_files

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
    for _, row in lb.table.iterrows():
        if row.get("depth_flag"):
            click.echo(f"warning ({row['model']}): {row['depth_flag']}: a prediction of sequencing depth "
                       "alone scores as well (docs/metrics.md, Confounds)", err=True)  # fmt: skip
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
    """Is each pathway predicted better than matched random gene sets, raw and depth-adjusted? Writes pathway_null.csv."""
    from ..compare.null import pathway_null
    from ..io.runfolder import check_files

    check_files(out or run, ["pathway_null.csv", "pathway_null.json"], kind="null", overwrite=overwrite)
    res = pathway_null(run, n_draws=draws, seed=seed)
    path = res.write(out or run, overwrite=overwrite)
    t = res.table.dropna(subset=["z"])
    line = f"{len(t)} pathways, {draws} draws each ({res.info['matched_on']}); raw: z > 2 for "
    line += f"{int((t['z'] > 2).sum())}, q < 0.05 for {int((t['q'] < 0.05).sum())}"
    if res.info["depth_adjusted"]:
        za, qa = t["z_depth_adjusted"], t["q_depth_adjusted"]
        line += f"; depth-adjusted: z > 2 for {int((za > 2).sum())}, q < 0.05 for {int((qa < 0.05).sum())}"
    click.echo(f"{line}  -> {path}")


@main.command("controls")
@click.argument("truth", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for control-*.h5ad.")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(["shuffle", "type-mean", "noise", "depth"]),
    help="Controls to write (repeatable; default: all).",
)
@click.option("--depth-key", help="depth: the truth obs column to use as given (as score --depth-key).")
@click.option(
    "--snr", default="0.25,1,4", show_default=True, help="Comma-separated SNRs of the noise ladder."
)
@click.option("--layer", help="Read measured expression from layers[LAYER] instead of X.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the shuffles and noise.")
@click.option("--overwrite", is_flag=True, help="Replace existing control files.")
@_friendly
def controls_cmd(truth, out, kinds, depth_key, snr, layer, seed, overwrite):
    """Write control predictions (shuffled spots, cancer-type mean, noise ladder, depth only) for TRUTH."""
    from ..controls import KINDS, write_controls

    try:
        snrs = tuple(float(s) for s in snr.split(",") if s.strip())
    except ValueError:
        raise click.BadParameter(f"not a list of numbers: {snr!r}", param_hint="--snr") from None
    paths = write_controls(
        truth, out, kinds=kinds or KINDS, snr=snrs, seed=seed, layer=layer, overwrite=overwrite,
        depth_key=depth_key,
    )  # fmt: skip
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
        from ..io.runfolder import check_out
        from ..plot import save

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
    from ..plot import scatter

    return scatter(run_a, run_b, label_top=label_top)


@plot_grp.command("gpc-vs-pac")
@click.argument("run", type=click.Path(path_type=Path))
@_OUT
@_friendly
def plot_gpc_vs_pac(run):
    """RUN's pathway PAC (activity maps, y) against its GPC (genes one by one, x)."""
    from ..plot import gpc_vs_pac

    return gpc_vs_pac(run)


@plot_grp.command("levels")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@_OUT
@click.option("--control", "controls", multiple=True, help="Draw a model as a control (repeatable).")
@_friendly
def plot_levels(runs, controls):
    """GPC by variance level for several models (controls drawn apart)."""
    from ..plot import levels

    return levels(list(runs), controls=controls)


@plot_grp.command("variance")
@click.argument("run", type=click.Path(path_type=Path))
@_OUT
@_friendly
def plot_variance(run):
    """Density of gene variance with the level thresholds."""
    from ..plot import variance

    return variance(run)


@plot_grp.command("leaderboard")
@click.argument("table", type=click.Path(path_type=Path, exists=True))
@_OUT
@_friendly
def plot_leaderboard(table):
    """A leaderboard.csv as a table figure."""
    from ..plot import leaderboard_table

    return leaderboard_table(table)


@plot_grp.command("activity")
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
    """Measured and predicted pathway activity (mean-z) side by side on the tissue; also `plot spatial`."""
    from ..plot import spatial

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


plot_grp.add_command(plot_spatial, "spatial")  # the same figure under its first name


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
    from ..report import report

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
