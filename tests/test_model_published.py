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


# ------------------------------------------------------------------ schedule, skipping, DDP
FAST_MODEL = {"hidden_dim": 64, "dim_feedforward": 128, "transformer_heads": 4}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A small synthetic cohort as model inputs (10 WSIs: 7 train, 1 val, 2 test; 300 genes)."""
    from helpers import make_small

    from gpc_bench.baselines.histoprism.config import load_config
    from gpc_bench.synth import write_model_inputs

    cohort = make_small(n_wsi=10, n_genes=300, n_spots=(60, 90), n_modules=6, module_size=30)
    folder = tmp_path_factory.mktemp("pub")
    path = write_model_inputs(cohort, folder, train={"max_epochs": 3, "lr": 3e-3}, model=FAST_MODEL)
    return folder, load_config(path)


def published_linear_schedule_with_warmup(num_warmup_steps: int, num_training_steps: int):
    """``transformers.get_linear_schedule_with_warmup``'s lr_lambda, as its source writes it."""

    def lr_lambda(current_step: int):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        return max(
            0.0,
            float(num_training_steps - current_step) / float(max(1, num_training_steps - num_warmup_steps)),
        )

    return lr_lambda


def test_warmup_linear_schedule_matches_the_published_scheduler():
    from gpc_bench.baselines.histoprism.config import TrainConfig
    from gpc_bench.baselines.histoprism.train import make_schedule

    tc = TrainConfig(lr=5e-5, max_epochs=50, schedule="warmup-linear")
    steps_per_epoch = 7
    total = 50 * 7
    ref = published_linear_schedule_with_warmup(int(0.05 * total), total)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=tc.lr)
    sched = make_schedule(opt, tc, steps_per_epoch)
    for step in range(total + 3):
        assert opt.param_groups[0]["lr"] == pytest.approx(5e-5 * ref(step), rel=1e-12, abs=1e-18), step
        opt.step()
        sched.step()
    # the case: 5,000 epochs of 501 WSIs warm up for 250 epochs; epoch 30 runs at 6.0e-6
    assert 5e-5 * published_linear_schedule_with_warmup(int(0.05 * 5000 * 501), 5000 * 501)(
        30 * 501
    ) == pytest.approx(6.0e-6, rel=1e-3)


def test_non_finite_wsi_is_skipped_on_cpu(inputs, tmp_path):
    from gpc_bench.baselines.histoprism.config import TrainConfig
    from gpc_bench.baselines.histoprism.data import Cohort
    from gpc_bench.baselines.histoprism.model import HistoPrism
    from gpc_bench.baselines.histoprism.train import _Dist, make_schedule, train_step

    folder, cfg = inputs
    cohort = Cohort(cfg.data)
    wsi = cohort.load(cohort.sample_ids("train")[0])
    bad = dataclasses.replace(wsi, embeddings=np.full_like(wsi.embeddings, np.inf))
    mcfg = dataclasses.replace(cfg.model, img_dim=wsi.embeddings.shape[1], n_genes=len(cohort.genes),
                               n_cancer_types=len(cohort.cancer_types))  # fmt: skip
    torch.manual_seed(0)
    model = HistoPrism(mcfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tc = TrainConfig(lr=1e-2, max_epochs=2, schedule="warmup-linear", warmup_fraction=0.0)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr)
    sched = make_schedule(opt, tc, 2)
    s, n, skipped = train_step(model, opt, sched, None, [bad], cohort.cancer_types, tc, _Dist())
    assert (n, skipped) == (0, 1) and sched.last_epoch == 0  # no update, the schedule did not advance
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    s, n, skipped = train_step(model, opt, sched, None, [bad, wsi], cohort.cancer_types, tc, _Dist())
    assert (n, skipped) == (1, 1) and np.isfinite(s) and sched.last_epoch == 1
    assert not all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_fp16_is_refused_on_the_cpu():
    from gpc_bench.baselines.histoprism.config import TrainConfig
    from gpc_bench.baselines.histoprism.train import make_scaler

    with pytest.raises(InputError, match="fp16 .* runs on CUDA only"):
        make_scaler(TrainConfig(precision="fp16"), torch.device("cpu"))
    assert make_scaler(TrainConfig(), torch.device("cpu")) is None
    with pytest.raises(InputError, match="train.precision must be"):
        TrainConfig(precision="bf8")


def test_ddp_with_an_odd_number_of_wsis_sees_each_once(inputs, tmp_path):
    """5 training WSIs on 2 processes: 3 steps an epoch, the last on one WSI; the same weights as
    one process stepping over the same groups of 2."""
    import json
    import os
    import subprocess
    import sys

    import yaml

    from gpc_bench.baselines.histoprism.config import from_dict
    from gpc_bench.baselines.histoprism.train import load_checkpoint, rank_seed, train

    folder, cfg = inputs
    meta = pd.read_csv(cfg.data.metadata)
    train_ids = meta.index[meta["split"] == "train"][:5]
    meta["split"] = "test"
    meta.loc[train_ids, "split"] = "train"
    meta.to_csv(tmp_path / "m.csv", index=False)
    base = {
        "data": {"metadata": str(tmp_path / "m.csv"), "embeddings": cfg.data.embeddings,
                 "expression": cfg.data.expression},
        "model": FAST_MODEL | {"dropout": 0.0},
        "train": {"max_epochs": 3, "lr": 3e-3, "seed": 7},
    }  # fmt: skip
    (tmp_path / "ddp.yml").write_text(yaml.safe_dump(base | {"out": str(tmp_path / "ddp")}))
    one = dict(base, train=base["train"] | {"wsis_per_step": 2}, out=str(tmp_path / "one"))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd = [*torchrun, "-m", "gpc_bench", "-q", "model", "train", "--config", str(tmp_path / "ddp.yml")]
    cmd += ["--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    train(from_dict(one), device="cpu")
    hist = pd.read_csv(tmp_path / "ddp" / "history.csv")
    assert hist["wsis"].tolist() == [5, 5, 5]  # every WSI once an epoch, none twice
    ck_ddp = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")[1]
    ck_one = load_checkpoint(tmp_path / "one" / "checkpoint.pt")[1]
    for k, v in ck_one["state_dict"].items():
        d = (ck_ddp["state_dict"][k] - v).abs().max()
        assert d < 1e-4, (k, float(d))
    assert json.loads((tmp_path / "ddp" / "train_summary.json").read_text())["world_size"] == 2
    assert len({rank_seed(7, r) for r in range(4)}) == 4  # a dropout stream of its own per rank


def test_truth_written_for_scoring_is_measured_only():
    """predict scores against what was measured: spots with expression, NaN where no gene maps."""
    counts = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    expr = (np.array(["a", "b"], dtype=object), np.array(["S1", "S2", "S3"], dtype=object), np.log1p(counts))
    gene_map = {"S1": "E1", "S2": "E2", "S3": "E2"}
    emb = np.array(["b", "x", "a"], dtype=object)
    keep, t = published_target("W", emb, expr, ["E1", "E2", "E3"], gene_map, measured_only=True)
    assert keep.tolist() == [0, 2] and np.isnan(t[:, 2]).all()
    np.testing.assert_allclose(t[0, :2], [np.log1p(4), np.log1p(5) + np.log1p(6)], rtol=1e-6)
