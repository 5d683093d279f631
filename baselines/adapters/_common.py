"""What every adapter shares: checks, barcodes, the prediction AnnData and its conversion report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import anndata

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gpc_bench._errors import InputError, examples


@dataclass
class Converted:
    """A converted prediction file: ``adata`` in the format ``score`` reads, and what happened."""

    adata: anndata.AnnData
    report: dict = field(default_factory=dict)

    def write(self, out: str | Path, overwrite: bool = False, inputs: Sequence = ()) -> Path:
        """Write ``out`` (.h5ad, with the report in ``uns``) and ``out.conversion.json`` as one unit
        (:func:`gpc_bench.io.runfolder.atomic_files`); ``overwrite`` replaces only an earlier
        conversion, and never one of ``inputs``."""
        import warnings

        from gpc_bench.io.runfolder import atomic_files, dumps_json

        out = Path(out)
        self.adata.uns["gpc_bench_conversion"] = json.loads(dumps_json(self.report))

        def h5ad(path):
            with warnings.catch_warnings():  # barcodes repeat across WSIs by design
                warnings.filterwarnings("ignore", message="Observation names are not unique")
                self.adata.write_h5ad(path)

        files = {
            out.name: h5ad,
            out.name + ".conversion.json": lambda p: p.write_text(dumps_json(self.report)),
        }
        atomic_files(out.parent, files, kind="predictions", overwrite=overwrite, inputs=inputs)
        return out


def check_finite(x: np.ndarray, what: str) -> None:
    """Refuse NaN or infinity, naming where."""
    bad = ~np.isfinite(x)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InputError(
            f"{what} holds {int(bad.sum())} NaN or infinite values (first at row {r}, column {c})",
            "the model's output is damaged; re-run its inference",
        )


def read_gene_list(path: str | Path) -> list[str]:
    """Genes of a model's output (:func:`gpc_bench.io.genelist.read_gene_list`)."""
    from gpc_bench.io.genelist import read_gene_list as read

    return read(path, "gene list")


def barcodes_for(sample_id: str, n: int, embeddings=None, truth=None) -> tuple[np.ndarray, str]:
    """The barcodes of a WSI's ``n`` spots, in the order its model wrote them, and where they came from.

    From the WSI's HEST embedding file (``--embeddings DIR``: the loader's order), else from the
    truth's spots of that WSI in file order. Refused when the counts disagree.
    """
    if embeddings is not None:
        from gpc_bench.baselines.histoprism.data import embedding_path, read_embeddings

        barcodes = read_embeddings(embedding_path(embeddings, sample_id))[0]
        source = "embeddings"
    elif truth is not None:
        sid = np.asarray(truth.obs["sample_id"].astype(str))
        barcodes = np.asarray(truth.obs_names[sid == sample_id], dtype=object)
        source = "truth (file order)"
    else:
        raise InputError(
            f"no barcodes for WSI {sample_id!r}: this format stores none",
            "give --embeddings DIR (the HEST .h5 files the model read) or --truth FILE.h5ad",
        )
    if len(barcodes) != n:
        raise InputError(
            f"WSI {sample_id!r}: the predictions have {n} spots but the {source} has {len(barcodes)}",
            "use the embeddings or truth of the same WSIs the model predicted",
        )
    return np.asarray(barcodes, dtype=object), source


def build(blocks: list, genes: list[str], truth_blocks=None, layers=None, cancer_types=None):
    """The prediction AnnData from per-WSI ``(sample_id, barcodes, x)`` blocks."""
    import anndata as ad
    import pandas as pd

    x = np.concatenate([b[2] for b in blocks]).astype(np.float32)
    check_finite(x, "the predictions")
    obs = pd.DataFrame(
        {"sample_id": np.concatenate([[b[0]] * len(b[1]) for b in blocks])},
        index=pd.Index(np.concatenate([b[1] for b in blocks]).astype(str)),
    )
    if cancer_types:
        obs["cancer_type"] = obs["sample_id"].map(cancer_types).fillna("NA")
    dup = pd.Index(genes)[pd.Index(genes).duplicated()].tolist()
    if dup:
        raise InputError(f"the gene list repeats {examples(dup)}")
    out_layers = dict(layers or {})
    if truth_blocks is not None:
        t = np.concatenate(truth_blocks).astype(np.float32)
        check_finite(t, "the truth")
        out_layers["truth"] = t
    import warnings

    with warnings.catch_warnings():  # barcodes repeat across WSIs by design: (sample_id, barcode) is the key
        warnings.filterwarnings("ignore", message="Observation names are not unique")
        var = pd.DataFrame(index=pd.Index(genes))
        a = ad.AnnData(X=x, obs=obs.astype({"sample_id": "category"}), var=var)
    for k, v in out_layers.items():
        a.layers[k] = v
    return a


def base_report(fmt: str, source: Path, adata, order: str) -> dict:
    from gpc_bench.genes import detect_id_style, to_symbols
    from gpc_bench.io.checksum import sha256_file

    ids = np.asarray(adata.var_names, dtype=object)
    style = detect_id_style(ids)
    files = sorted(source.iterdir()) if source.is_dir() else [source]
    from gpc_bench._version import __version__

    return {
        "gpc_bench_version": __version__,
        "format": fmt,
        "source": source.name,
        "source_sha256": sha256_file(source) if source.is_file() else None,
        "file_sha256": {f.name: sha256_file(f) for f in files if f.is_file()} if source.is_dir() else None,
        "genes_dropped": 0,  # every gene of the source is kept; the panel is matched when scoring
        "genes_without_symbol": int(sum(1 for x in to_symbols(ids, style).tolist() if not x)),
        "n_wsi": int(adata.obs["sample_id"].nunique()),
        "n_spots": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "gene_id_style": style,
        "spot_order": order,
        "truth": "layers['truth']" if "truth" in adata.layers else "none (pass --truth to score)",
    }


#: below this median spot-level r of predicted and measured total expression, the spot order is doubted
ORDER_MIN_R = 0.1


def order_check(adata, truth, max_genes: int = 2000) -> dict:
    """A cheap check of a spot order that no barcode confirms (barcodes taken from the truth in its
    file order): per WSI, the Pearson r over spots of the predicted and the measured total expression
    (over up to ``max_genes`` shared genes). Every model of expression predicts depth, so r near 0
    says the rows are in another order than the truth's (for example HEST's embedding order). The
    same r under the truth's barcodes sorted is reported beside it: much higher there says which
    order the file has."""
    import warnings

    genes = [g for g in map(str, adata.var_names) if g in set(map(str, truth.var_names))][:max_genes]
    if not genes:
        return {"method": "no shared genes: not checked"}
    t_col = {g: j for j, g in enumerate(map(str, truth.var_names))}
    cols = np.sort(np.array([t_col[g] for g in genes]))
    p_col = {g: j for j, g in enumerate(map(str, adata.var_names))}
    p_cols = np.array([p_col[str(truth.var_names[j])] for j in cols])
    t_sid = np.asarray(truth.obs["sample_id"].astype(str))
    p_sid = np.asarray(adata.obs["sample_id"].astype(str))
    per, alt = {}, {}
    for s in dict.fromkeys(p_sid.tolist()):
        rows = np.flatnonzero(t_sid == s)
        x = truth.X[rows]
        x = (x.toarray() if hasattr(x, "toarray") else np.asarray(x))[:, cols]
        y = np.asarray(adata.X[p_sid == s][:, p_cols], dtype=np.float64)
        tx, ty = np.asarray(x, dtype=np.float64).sum(1), y.sum(1)
        sorted_rows = np.argsort(np.asarray(truth.obs_names[rows], dtype=str), kind="stable")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            per[s] = _r(tx, ty)
            alt[s] = _r(tx[sorted_rows], ty)
    med = float(np.nanmedian(list(per.values()))) if per else float("nan")
    med_alt = float(np.nanmedian(list(alt.values()))) if alt else float("nan")
    out = {
        "method": "r over spots of predicted vs measured total expression, per WSI (truth file order)",
        "median_r_total": round(med, 4),
        "median_r_total_sorted_barcodes": round(med_alt, 4),
        "per_wsi": {k: round(v, 4) for k, v in per.items()},
    }
    if not med >= ORDER_MIN_R:
        hint = (
            f"; with the truth's barcodes sorted it is {med_alt:.2f}, so the file may be in "
            "sorted-barcode order"
            if med_alt > max(0.3, med + 0.2)
            else ""
        )
        out["warning"] = (
            "the spot order is assumed (no barcodes) and looks wrong: predicted and measured total "
            f"expression correlate at median r = {med:.2f} over spots{hint}; give --embeddings DIR "
            "(the loader's order)"
        )
    return out


def _r(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])
