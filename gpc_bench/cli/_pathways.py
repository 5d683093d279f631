"""``curate`` and the ``pathways`` group."""

from __future__ import annotations

from pathlib import Path

import click

from . import _friendly, main


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
@click.option(
    "--collection",
    "collections",
    multiple=True,
    metavar="NAME=FILE.gmt",
    help="A further collection (e.g. reactome=c2.cp.reactome.gmt), filtered and pruned like GO; repeatable.",
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
    collections,
    out,
    overwrite,
):
    """Curate Hallmark + GO pathways (size filter, Jaccard pruning) into a collection folder."""
    from ..curation import curate

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
        collections=list(collections),
        out=out,
        overwrite=overwrite,
    )
    more = "".join(f"  {k} {len(v)}" for k, v in (res.extra or {}).items())
    click.echo(
        f"hallmark {len(res.hallmark)}  go {len(res.go)}{more}  {res.manifest['collection_id']}  -> {out}"
    )


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
    from ..curation.histoprism import import_histoprism

    m = import_histoprism(files, out, overwrite=overwrite)
    counts = ", ".join(f"{n} {c}" for c, n in m["collections"].items())
    click.echo(f"collection     {out} ({counts}; {m['collection_id']})")


@pathways_grp.command("list")
@_PATHWAYS_OPT
@click.option("--collection", help="Only this collection (hallmark, go, ...).")
@_friendly
def pathways_list(spec, collection):
    """Print every set with its size, after the collection's provenance."""
    from ..curation.catalog import list_pathways, provenance
    from ..io.gmt import load_pathways

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
    from ..curation.catalog import show_pathway

    info = show_pathway(name, list(spec) or None)
    click.echo(f"{info['pathway']}  ({info['collection']}, {info['size']} genes)  {info['description']}")
    if info["curation"]:
        c = info["curation"]
        state = "kept" if c["kept"] else f"removed: Jaccard {c['jaccard']:.3f} with {c['conflict']}"
        click.echo(f"curation: {c['namespace']}, size {c['size']}, {state}")
    click.echo(" ".join(info["genes"]))
