"""The formats: STPath's per-WSI AnnData, HistoPrism's predicted_genes.csv, STEM's sampled tensors,
STFlow's evaluation dict."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gpc_bench._errors import InputError, examples
from gpc_bench.io.h5ad import read_anndata

from ._common import Converted, barcodes_for, base_report, build, check_finite, read_gene_list


def stpath_h5ad(
    folder: str | Path,
    *,
    pattern: str = "pred_{sample_id}.h5ad",
    embeddings: str | Path | None = None,
    truth: str | Path | None = None,
    cancer_types: dict | None = None,
) -> Converted:
    """STPath's inference output: one AnnData per WSI (``STPathInference.inference``), saved by users
    as ``pred_<sample_id>.h5ad``. X holds log1p predictions in the order of the WSI's HEST embedding
    barcodes; there are no barcodes, no ``obs["sample_id"]`` and no truth, so barcodes come from
    ``embeddings`` (or the truth, in its file order) and the sample id from the file name."""
    import re

    folder = Path(folder)
    if "{sample_id}" not in pattern:
        raise InputError(f"--pattern {pattern!r} must contain {{sample_id}}")
    head, tail = pattern.split("{sample_id}", 1)
    rx = re.compile("^" + re.escape(head) + "(.+)" + re.escape(tail) + "$")
    files = sorted(p for p in folder.iterdir() if rx.match(p.name)) if folder.is_dir() else []
    if not files:
        raise InputError(f"no file in {folder} matches {pattern!r}", "set --pattern to the files' naming")
    blocks, genes, sources = [], None, set()
    for f in files:
        sid = rx.match(f.name).group(1)
        a = read_anndata(f)
        g = [str(x) for x in a.var_names]
        if genes is None:
            genes = g
        elif g != genes:
            raise InputError(
                f"{f.name} has another gene list than {files[0].name}", "convert one panel at a time"
            )
        x = a.X.toarray() if hasattr(a.X, "toarray") else np.asarray(a.X)
        bc, src = barcodes_for(sid, a.n_obs, embeddings, truth)
        sources.add(src)
        blocks.append((sid, bc, x))
    adata = build(blocks, genes, cancer_types=cancer_types)
    adata.uns["stpath_files"] = [f.name for f in files]
    report = base_report(
        "stpath-h5ad", folder, adata, f"as written; barcodes from {', '.join(sorted(sources))}"
    )
    from gpc_bench.io.checksum import sha256_file

    report["files"] = [f.name for f in files]
    report["file_sha256"] = {f.name: sha256_file(f) for f in files}  # the files converted, not the folder
    return Converted(adata, report)


def stpath_results(
    path: str | Path, *, embeddings: str | Path | None = None, cancer_types: dict | None = None
) -> Converted:
    """STPath's benchmark inference output ``results.pth``: ``torch.save`` of a list of AnnData, one per
    WSI, X the prediction, ``layers["groundtruth"]`` the log1p truth, ``uns["sample_id"]`` the WSI.
    Read without STPath's code, with ``weights_only=True``: the AnnData objects are never built by
    the unpickler (their state is kept as plain data and rebuilt here), and nothing outside numpy
    and pandas containers is allowed (:mod:`gpc_bench.io.safeload`)."""
    from gpc_bench.io.safeload import anndata_from_record, load_torch

    path = Path(path)
    objs = load_torch(path, "STPath's results.pth (a list of AnnData)", pandas=True, records=True)
    if not isinstance(objs, list) or not objs:
        raise InputError(
            f"{path}: expected a list of AnnData, got {type(objs).__name__}",
            "results.pth is what STPath's benchmark inference torch.saves",
        )
    objs = [anndata_from_record(a, f"{path} item {k}") for k, a in enumerate(objs)]
    genes = [str(g) for g in objs[0].var_names]
    blocks, truths = [], []
    for k, a in enumerate(objs):
        sid = str(a.uns.get("sample_id", f"wsi{k}"))
        if [str(g) for g in a.var_names] != genes:
            raise InputError(f"{path}: WSI {sid!r} has another gene list than the first")
        if "groundtruth" not in a.layers:
            raise InputError(f"{path}: WSI {sid!r} has no layers['groundtruth']")
        x = a.X.toarray() if hasattr(a.X, "toarray") else np.asarray(a.X)
        if embeddings is not None:
            bc, _ = barcodes_for(sid, a.n_obs, embeddings)
        else:
            bc = np.array([f"spot{i}" for i in range(a.n_obs)], dtype=object)
        t = a.layers["groundtruth"]
        blocks.append((sid, bc, x))
        truths.append(t.toarray() if hasattr(t, "toarray") else np.asarray(t))
    adata = build(blocks, genes, truth_blocks=truths, cancer_types=cancer_types)
    order = "barcodes from embeddings" if embeddings is not None else "as saved (no barcodes: spot<i>)"
    return Converted(adata, base_report("stpath-results", path, adata, order))


def histoprism(
    csv: str | Path,
    *,
    embeddings: str | Path | None = None,
    truth: str | Path | None = None,
    cancer_types: dict | None = None,
) -> Converted:
    """``predicted_genes.csv`` of HistoPrism's inference: one row per patch, ``sample_id``, then one
    column per panel gene, WSIs in the test loader's order (read with polars; ~40k columns)."""
    import polars as pl

    csv = Path(csv)
    if not csv.is_file():
        raise InputError(f"{csv} not found")
    try:
        lazy = pl.scan_csv(csv, schema_overrides={"sample_id": pl.Utf8})  # ~40k columns: scanned, streamed
        try:
            df = lazy.collect(engine="streaming")
        except TypeError:  # polars before the engine argument
            df = lazy.collect()
    except (pl.exceptions.PolarsError, UnicodeDecodeError, OSError) as err:
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise InputError(
            f"{csv} is not a readable CSV: {first}",
            "give predicted_genes.csv as HistoPrism's inference.py writes it",
        ) from None
    if "sample_id" not in df.columns:
        raise InputError(
            f"{csv} has no sample_id column (has {df.columns[:5]}...)", "is it predicted_genes.csv?"
        )
    genes = [c for c in df.columns if c != "sample_id"]
    sid = df["sample_id"].cast(pl.Utf8).to_numpy()
    x = df.select(genes).cast(pl.Float32).to_numpy()
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    order = list(dict.fromkeys(sid.tolist()))
    if len(starts) != len(order):
        raise InputError(
            f"{csv}: the rows of a WSI are not contiguous", "the file is not as inference.py writes it"
        )
    blocks, sources = [], set()
    for a, b in zip(starts, np.r_[starts[1:], len(sid)], strict=True):
        s = str(sid[a])
        bc, src = barcodes_for(s, int(b - a), embeddings, truth)
        sources.add(src)
        blocks.append((s, bc, x[a:b]))
    adata = build(blocks, genes, cancer_types=cancer_types)
    report = base_report(
        "histoprism", csv, adata, f"rows as written; barcodes from {', '.join(sorted(sources))}"
    )
    return Converted(adata, report)


#: what STEM's values are (stem_train.py: ``np.log2(count + 1)``), recorded in the conversion report
STEM_UNITS = (
    "log2(count + 1), as STEM's stem_train.py normalises (not log1p, the natural log): PCC and GPC are "
    "unchanged by the factor ln 2 between them, but error metrics and a log1p truth's scale are not"
)


def stem(
    tensor: str | Path | Sequence[str | Path],
    *,
    slide: str | Path | Sequence[str | Path],
    genes: str | Path,
    n_draws: int,
    sample_id: str | None = None,
    cancer_types: dict | None = None,
) -> Converted:
    """STEM's ``generated_samples_<ckpt>_<K>sample.pt`` (``stem_sample.py``): a tensor (N*K, 1, G),
    the K draws of each spot interleaved (row j is spot j // K, draw j % K). The prediction is the
    mean over draws; the draws' standard deviation is kept as ``layers["pred_sd"]``. Spots follow the
    slide's obs. Values are STEM's ``log2(count + 1)`` (:data:`STEM_UNITS`).

    STEM writes one file per held-out slide: ``tensor`` and ``slide`` may be lists of the same
    length (file i belongs to slide i), or folders: ``tensor`` holding ``<sample_id>/`` subfolders
    with one ``generated_samples_*.pt`` each, ``slide`` holding ``<sample_id>.h5ad``. The slides
    become one cohort file.
    """
    pairs = _stem_pairs(tensor, slide)
    if sample_id is not None and len(pairs) > 1:
        raise InputError(
            "--sample-id names one slide, but several were given", "leave it out: slide file stems are used"
        )
    gene_list = read_gene_list(genes)
    blocks, sds = [], []
    for t, s in pairs:
        sid, barcodes, mean, sd = _stem_slide(t, s, genes, gene_list, n_draws, sample_id)
        blocks.append((sid, barcodes, mean))
        sds.append(sd)
    seen = [b[0] for b in blocks]
    if len(set(seen)) < len(seen):
        raise InputError(f"the slides repeat a sample id: {examples(seen)}", "give each slide once")
    sd = {"pred_sd": np.concatenate(sds).astype(np.float32)}
    adata = build(blocks, gene_list, layers=sd, cancer_types=cancer_types)
    source = (
        pairs[0][0]
        if len(pairs) == 1
        else Path(tensor if isinstance(tensor, str | Path) else pairs[0][0].parent)
    )
    report = base_report("stem", source, adata, "the slide's obs order")
    if len(pairs) > 1:
        from gpc_bench.io.checksum import sha256_file

        report["files"] = {sid: str(t) for sid, (t, _) in zip(seen, pairs, strict=True)}
        report["file_sha256"] = {str(t): sha256_file(t) for t, _ in pairs}
    report |= {
        "n_draws": n_draws,
        "units": STEM_UNITS,
        "pred_sd_units": "log2(count + 1), over the draws (ddof 0)",
    }
    return Converted(adata, report)


def _stem_pairs(tensor, slide) -> list[tuple[Path, Path]]:
    """(tensor file, slide file) of each slide: from two lists, or from two folders."""
    if isinstance(tensor, str | Path) and Path(tensor).is_dir():
        if slide is None or not Path(slide).is_dir():
            raise InputError(
                f"{tensor} is a folder of STEM outputs: --slide must be the folder of the slides' "
                "<sample_id>.h5ad"
            )
        pairs = []
        for sub in sorted(p for p in Path(tensor).iterdir() if p.is_dir()):
            files = sorted(sub.glob("generated_samples_*.pt"))
            if len(files) != 1:
                raise InputError(
                    f"{sub} holds {len(files)} generated_samples_*.pt files", "keep one per slide folder"
                )
            h5 = Path(slide) / f"{sub.name}.h5ad"
            if not h5.is_file():
                raise InputError(f"no slide {h5} for STEM output {files[0]}", "name slides <sample_id>.h5ad")
            pairs.append((files[0], h5))
        if not pairs:
            raise InputError(
                f"{tensor} has no <sample_id>/generated_samples_*.pt", "STEM writes one file per slide"
            )
        return pairs
    tensors = [tensor] if isinstance(tensor, str | Path) else list(tensor)
    slides = [slide] if isinstance(slide, str | Path) else list(slide or [])
    if len(tensors) != len(slides):
        raise InputError(
            f"{len(tensors)} STEM file(s) but {len(slides)} --slide(s)",
            "give one --slide per file, in the same order",
        )
    return [(Path(t), Path(s)) for t, s in zip(tensors, slides, strict=True)]


def _stem_slide(tensor: Path, slide: Path, genes, gene_list, n_draws: int, sample_id):
    from gpc_bench.io.safeload import load_torch

    if not tensor.is_file():
        raise InputError(f"{tensor} not found")
    t = load_torch(tensor, "STEM's sampled predictions (a tensor N*K x 1 x G)")
    import torch  # load_torch has said how to install it where it is missing

    if not isinstance(t, torch.Tensor) or t.ndim != 3 or t.shape[1] != 1:
        raise InputError(
            f"{tensor}: expected a tensor of shape (N*K, 1, G), got {getattr(t, 'shape', type(t).__name__)}"
        )
    rows, _, g = t.shape
    if g != len(gene_list):
        raise InputError(
            f"{tensor} has {g} genes but {genes} lists {len(gene_list)}", "use selected_gene_list.txt"
        )
    if n_draws < 1 or rows % n_draws:
        raise InputError(f"{tensor} has {rows} rows, not a multiple of --n-draws {n_draws}")
    meta = read_anndata(slide, backed="r")
    n = rows // n_draws
    if meta.n_obs != n:
        raise InputError(
            f"{tensor} holds {n} spots x {n_draws} draws but the slide {slide} has {meta.n_obs} spots"
        )
    draws = t.reshape(n, n_draws, g).double().numpy()  # interleaved: spot-major
    check_finite(draws.reshape(-1, g), f"the sampled predictions of {tensor}")
    barcodes = np.asarray(meta.obs_names, dtype=object)
    return sample_id or Path(slide).stem, barcodes, draws.mean(1), draws.std(1)


def _read_csv(path, what: str):
    """A small CSV (WSIs, cancer types) read with pandas; an unreadable one is refused by name."""
    import pandas as pd

    try:
        return pd.read_csv(path, dtype={"sample_id": str})
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as err:
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise InputError(f"{path} is not a readable CSV ({what}): {first}") from None


def _load_dict(path: Path) -> dict:
    from gpc_bench.io.safeload import load_pickle, load_torch

    what = "STFlow's evaluation dict {preds_all, targets_all}"
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except Exception as err:  # not a zip, or object arrays (which would need pickle)
            raise InputError(
                f"{path} is not a readable .npz of plain arrays: {type(err).__name__}: {str(err)[:200]}"
            ) from None
    if path.suffix in (".pt", ".pth"):
        d = load_torch(path, what)
        if not isinstance(d, dict):
            raise InputError(f"{path}: expected a dict of preds_all and targets_all, not {type(d).__name__}")
        return {k: (v.numpy() if hasattr(v, "numpy") else np.asarray(v)) for k, v in d.items()}
    return load_pickle(path, what)


def stflow(
    results: str | Path,
    *,
    samples: str | Path,
    genes: str | Path,
    embeddings: str | Path | None = None,
    cancer_types: dict | None = None,
) -> Converted:
    """STFlow's evaluation output ``{"preds_all", "targets_all"}`` (spots x genes, WSIs concatenated in
    loader order), as .npz, .pt/.pth or pickle, with the ordered WSIs and their spot counts
    (``samples``: a CSV ``sample_id,n_spots``, or ``sample_id`` alone with ``embeddings`` giving the
    counts), the genes (``var_50genes.json``) and optionally the
    HEST embeddings for barcodes. ``targets_all`` becomes ``layers["truth"]``."""

    results = Path(results)
    if not results.is_file():
        raise InputError(f"{results} not found")
    d = _load_dict(results)
    if not isinstance(d, dict) or not {"preds_all", "targets_all"} <= set(d):
        raise InputError(
            f"{results}: expected a dict with preds_all and targets_all", "as STFlow's eval returns"
        )
    preds, targets = np.asarray(d["preds_all"]), np.asarray(d["targets_all"])
    if preds.shape != targets.shape or preds.ndim != 2:
        raise InputError(f"{results}: preds_all {preds.shape} and targets_all {targets.shape} must match")
    gene_list = read_gene_list(genes)
    if preds.shape[1] != len(gene_list):
        raise InputError(f"{results} has {preds.shape[1]} genes but {genes} lists {len(gene_list)}")
    table = _read_csv(samples, "the WSIs in loader order (sample_id,n_spots)")
    if "sample_id" not in table.columns:
        raise InputError(f"{samples} needs a sample_id column (the WSIs in loader order)")
    if "n_spots" in table.columns:
        counts = table["n_spots"].astype(int).tolist()
    elif embeddings is not None:  # the spot counts of the embedding files the loader read
        from gpc_bench.baselines.histoprism.data import embedding_path, read_embeddings

        counts = [len(read_embeddings(embedding_path(embeddings, s))[0]) for s in table["sample_id"]]
    else:
        raise InputError(
            f"{samples} has no n_spots column", "add n_spots, or give --embeddings DIR to count them"
        )
    if sum(counts) != len(preds):
        raise InputError(
            f"the spot counts in {samples} add up to {sum(counts)} but {results} has {len(preds)} rows",
            "list every WSI of the evaluation, in the loader's order",
        )
    blocks, truths, row = [], [], 0
    for s, n in zip(table["sample_id"], counts, strict=True):
        if embeddings is not None:
            bc, _ = barcodes_for(s, n, embeddings)
        else:
            bc = np.array([f"spot{i}" for i in range(n)], dtype=object)
        blocks.append((s, bc, preds[row : row + n]))
        truths.append(targets[row : row + n])
        row += n
    adata = build(blocks, gene_list, truth_blocks=truths, cancer_types=cancer_types)
    order = (
        "barcodes from embeddings" if embeddings is not None else "loader order only (no barcodes: spot<i>)"
    )
    report = base_report("stflow", results, adata, order)
    report["wsi_order"] = f"as {Path(samples).name} lists them, assumed to be the loader's" + (
        " (spot counts from the embeddings)"
        if embeddings is not None
        else ": not verified (give --embeddings DIR)"
    )
    report["spot_order_verified"] = embeddings is not None
    return Converted(adata, report)
