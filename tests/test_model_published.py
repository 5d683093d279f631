"""The reference model under the published training's options, checked against re-implementations
of the published functions (written from reading susuhu/HistoPrism: arrays in, arrays out)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from gpc_bench import InputError  # noqa: E402
from gpc_bench.baselines.histoprism.config import DataConfig  # noqa: E402
from gpc_bench.baselines.histoprism.data import (  # noqa: E402
    cancer_type_list,
    check_empty_cancer_types,
    onehot,
    published_target,
    read_metadata,
)


# ------------------------------------------------------------------ the published loader, rewritten
def published_get_gene_array_efficient(expr_df: pd.DataFrame, emb_barcodes, gene_list, gene_dict):
    """``utils/custom_dataset.get_gene_array_efficient`` with the AnnData I/O taken out: the
    log1p frame (spots x genes) in, the target array out."""
    df = np.log1p(expr_df.astype(np.float64))  # load_adata(normalize=True): sc.pp.log1p only
    barcodes = list(emb_barcodes)
    if not df.index.equals(pd.Index(barcodes)):
        df = df.reindex(barcodes, fill_value=0.0)
    mapper = pd.Series(gene_dict)
    mapper = mapper[mapper.index.isin(df.columns)]
    mapped = df.T.groupby(mapper).sum().T
    return mapped.reindex(columns=gene_list, fill_value=0.0).to_numpy(dtype=np.float32)


def test_published_targets_match_the_published_loader():
    rng = np.random.default_rng(0)
    symbols = ["TP53", "EGFR", "MYC", "MYC-AS", "KRAS", "NOTINPANEL"]
    counts = pd.DataFrame(
        rng.poisson(3, (6, len(symbols))), index=[f"b{i}" for i in range(6)], columns=symbols
    )
    panel = ["ENSG01", "ENSG02", "ENSG03", "ENSG04", "ENSG05"]  # ENSG04: measured by no symbol
    gene_dict = {"TP53": "ENSG01", "EGFR": "ENSG02", "MYC": "ENSG03", "MYC-AS": "ENSG03", "KRAS": "ENSG05"}
    emb = np.array(["b3", "b0", "b5", "bX", "b1"], dtype=object)  # another order, one spot missing
    expect = published_get_gene_array_efficient(counts, emb, panel, gene_dict)
    expr = (np.asarray(counts.index, dtype=object), np.asarray(symbols, dtype=object),
            np.log1p(counts.to_numpy(np.float32)))  # fmt: skip
    keep, got = published_target("W", emb, expr, panel, gene_dict)
    assert np.array_equal(keep, np.arange(len(emb)))
    np.testing.assert_allclose(got, expect, rtol=1e-6, atol=1e-6)
    assert np.all(got[:, 3] == 0) and np.all(got[3] == 0)  # zero-filled gene and spot
    summed = np.log1p(counts["MYC"].to_numpy(float)) + np.log1p(counts["MYC-AS"].to_numpy(float))
    np.testing.assert_allclose(got[1, 2], summed[0], rtol=1e-6)  # b0: MYC + MYC-AS summed


def test_published_targets_through_the_cohort(tmp_path):
    """A symbol expression file against an Ensembl panel: refused by default, mapped and summed
    with targets: published (default map: gpc-bench's gene table)."""
    import anndata as ad
    import h5py

    from gpc_bench.baselines.histoprism.data import Cohort
    from gpc_bench.genes import symbol_to_ensembl

    s2e = symbol_to_ensembl()
    symbols = ["TP53", "EGFR", "KRAS"]
    panel = [s2e[s][0] for s in symbols] + ["ENSG00000000000"]
    rng = np.random.default_rng(1)
    bc = [f"{i}x{i}" for i in range(8)]
    ad.AnnData(rng.poisson(4, (8, 3)).astype(np.float32), obs=pd.DataFrame(index=bc),
               var=pd.DataFrame(index=symbols)).write_h5ad(tmp_path / "S1.h5ad")  # fmt: skip
    (tmp_path / "emb").mkdir()
    with h5py.File(tmp_path / "emb" / "S1.h5", "w") as f:
        f["embeddings"] = rng.random((8, 4), dtype=np.float32)
        f["barcodes"] = np.array([b.encode() for b in bc])
    pd.DataFrame({"sample_id": ["S1"], "cancer_type": ["IDC"], "split": ["train"]}).to_csv(
        tmp_path / "m.csv", index=False
    )
    (tmp_path / "panel.txt").write_text("\n".join(panel))
    base = DataConfig(metadata=str(tmp_path / "m.csv"), embeddings=str(tmp_path / "emb"),
                      expression=str(tmp_path), genes=str(tmp_path / "panel.txt"), log1p=True)  # fmt: skip
    with pytest.raises(InputError, match="same gene ID style"):
        Cohort(base).load("S1")
    wsi = Cohort(dataclasses.replace(base, targets="published")).load("S1")
    x = ad.read_h5ad(tmp_path / "S1.h5ad").X
    np.testing.assert_allclose(wsi.target[:, :3], np.log1p(x), rtol=1e-6)
    assert np.all(wsi.target[:, 3] == 0) and not np.isnan(wsi.target).any()


def test_empty_cancer_types_are_an_error_or_the_published_zeros(tmp_path):
    pd.DataFrame({"sample_id": ["A", "B", "C"], "oncotree_code": ["IDC", "", "LUAD"],
                  "split": ["train", "train", "val"]}).to_csv(tmp_path / "m.csv", index=False)  # fmt: skip
    meta = read_metadata(tmp_path / "m.csv")
    cfg = DataConfig(metadata=str(tmp_path / "m.csv"))
    assert cancer_type_list(cfg, meta) == ["IDC", "LUAD"]  # no crash on the empty code
    with pytest.raises(
        InputError, match=r"(?s)1 WSIs have an empty cancer type \(1 train\).*empty_cancer_type: zeros"
    ):
        check_empty_cancer_types(cfg, meta)
    check_empty_cancer_types(dataclasses.replace(cfg, empty_cancer_type="zeros"), meta)
    assert not onehot("", ["IDC", "LUAD"]).any()  # the published onehot_oncotree of an unknown code
    with pytest.raises(InputError, match="empty_cancer_type must be"):
        DataConfig(empty_cancer_type="maybe")
