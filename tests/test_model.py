"""The reference HistoPrism model (needs torch: skipped without the [model] extra)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gpc_bench import InputError  # noqa: E402
from gpc_bench.baselines.histoprism.config import (  # noqa: E402
    ModelConfig,
    example_config,
    from_dict,
    load_config,
)
from gpc_bench.baselines.histoprism.data import read_embeddings  # noqa: E402
from gpc_bench.baselines.histoprism.model import (  # noqa: E402
    HistoPrism,
    load_published_state_dict,
    masked_mse,
)
from gpc_bench.baselines.histoprism.predict import import_published, predict  # noqa: E402
from gpc_bench.baselines.histoprism.train import load_checkpoint, train  # noqa: E402

SMALL = dict(img_dim=24, n_genes=30, n_cancer_types=3, hidden_dim=32, dim_feedforward=64, transformer_heads=4)
FAST_MODEL = {"hidden_dim": 64, "dim_feedforward": 128, "transformer_heads": 4}


def _small_model(**kw) -> HistoPrism:
    torch.manual_seed(0)
    return HistoPrism(ModelConfig(**(SMALL | kw))).eval()


def _inputs(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, SMALL["img_dim"], generator=g)
    coords = torch.stack(torch.meshgrid(torch.arange(8.0), torch.arange(5.0), indexing="ij"), -1).reshape(
        -1, 2
    )
    return emb, torch.tensor([0.0, 1.0, 0.0]), coords[:n] * 100


# ------------------------------------------------------------------------------------------ network
def test_shapes_and_ablations():
    emb, onco, coords = _inputs()
    assert _small_model()(emb, onco).shape == (40, 30)
    assert _small_model(conditioning=False)(emb).shape == (40, 30)
    assert _small_model(pos_enc=True)(emb, onco, coords).shape == (40, 30)
    with pytest.raises(InputError, match="coordinates"):
        _small_model(pos_enc=True)(emb, onco)
    with pytest.raises(InputError, match="one-hot"):
        _small_model()(emb, None)
    with pytest.raises(InputError, match="img_dim"):
        HistoPrism(ModelConfig(n_genes=3, n_cancer_types=2))


def test_masked_mse_ignores_nan_targets():
    pred = torch.randn(6, 5)
    target = torch.randn(6, 5)
    target[:, 2] = float("nan")
    target[0, 0] = float("nan")
    ok = ~torch.isnan(target)
    expect = ((pred - torch.nan_to_num(target)) ** 2)[ok].mean()
    assert torch.allclose(masked_mse(pred, target), expect)
    p = pred.clone().requires_grad_(True)
    loss = masked_mse(p, torch.full((6, 5), float("nan")))
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.all(p.grad == 0)


def test_conditioning_is_a_per_cancer_type_offset():
    """One key and value: softmax weight 1, so the output is LayerNorm(x + W_o(W_v c + b_v) + b_o)."""
    m = _small_model()
    emb, onco, _ = _inputs()
    att = m.conditioner.attention
    d = SMALL["img_dim"]
    c = m.onco_embedder(onco)
    w_v, b_v = att.in_proj_weight[2 * d :], att.in_proj_bias[2 * d :]
    offset = att.out_proj(c @ w_v.T + b_v)
    expect = torch.nn.functional.layer_norm(
        emb + offset, (d,), m.conditioner.norm.weight, m.conditioner.norm.bias, m.conditioner.norm.eps
    )
    with torch.no_grad():
        got = m.condition(emb, onco)
    assert torch.allclose(got, expect.detach(), atol=1e-5)
    # the query does not matter: a patch gets the same offset whatever the other patches are
    with torch.no_grad():
        assert torch.allclose(m.condition(emb[:3], onco), got[:3], atol=1e-6)


def test_cancer_type_changes_output_and_patch_order_does_not():
    m = _small_model()
    emb, onco, coords = _inputs()
    other = torch.tensor([0.0, 0.0, 1.0])
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        base = m(emb, onco)
        assert (m(emb, other) - base).abs().max() > 1e-3
        assert torch.allclose(m(emb[perm], onco), base[perm], atol=1e-5)
        pe = _small_model(pos_enc=True)
        with_pe = pe(emb, onco, coords)
        assert torch.allclose(pe(emb[perm], onco, coords[perm]), with_pe[perm], atol=1e-5)
        assert (pe(emb[perm], onco, coords) - with_pe[perm]).abs().max() > 1e-3


def test_encoder_goes_through_sdpa_and_leaves_the_global_flag_alone():
    """The fused fast path materialises N x N weights on CPU; the model takes the SDPA path instead."""
    m = _small_model()
    emb, onco, _ = _inputs()
    assert torch.backends.mha.get_fastpath_enabled()
    with torch.no_grad(), torch.profiler.profile() as prof:
        out = m(emb, onco)
    assert torch.backends.mha.get_fastpath_enabled()
    names = {e.name for e in prof.events()}
    assert "aten::scaled_dot_product_attention" in names
    assert not any("transformer_encoder_layer_fwd" in n for n in names)
    with torch.no_grad():  # the same numbers as the fused path
        fused = m.gene_regression_head(
            m.transformer(m.input_proj(m.condition(emb, onco)).unsqueeze(0)).squeeze(0)
        )
    assert torch.allclose(out, fused, atol=1e-5)


# published module names and shapes (models/HistoPrIsm.py in susuhu/HistoPrism, n_conv_layers 0)
def _published_state_dict(cfg: ModelConfig, seed: int = 3) -> dict:
    g = torch.Generator().manual_seed(seed)
    d, h, ff = cfg.img_dim, cfg.hidden_dim, cfg.dim_feedforward
    shapes = {
        "img_conv.gconv.att_src": (1, 1, d),
        "img_conv.gconv.att_dst": (1, 1, d),
        "img_conv.gconv.bias": (d,),
        "img_conv.gconv.lin.weight": (d, d),
        "img_norm.weight": (d,),
        "img_norm.bias": (d,),
        "input_proj.weight": (h, d),
        "input_proj.bias": (h,),
        "onco_embedder.weight": (d, cfg.n_cancer_types),
        "onco_embedder.bias": (d,),
        "conditioner.attention.in_proj_weight": (3 * d, d),
        "conditioner.attention.in_proj_bias": (3 * d,),
        "conditioner.attention.out_proj.weight": (d, d),
        "conditioner.attention.out_proj.bias": (d,),
        "conditioner.norm.weight": (d,),
        "conditioner.norm.bias": (d,),
        "gene_regression_head.0.weight": (h, h),
        "gene_regression_head.0.bias": (h,),
        "gene_regression_head.1.weight": (h,),
        "gene_regression_head.1.bias": (h,),
        "gene_regression_head.4.weight": (cfg.n_genes, h),
        "gene_regression_head.4.bias": (cfg.n_genes,),
    }
    for i in range(cfg.transformer_layers):
        p = f"transformer.layers.{i}."
        shapes |= {
            p + "self_attn.in_proj_weight": (3 * h, h),
            p + "self_attn.in_proj_bias": (3 * h,),
            p + "self_attn.out_proj.weight": (h, h),
            p + "self_attn.out_proj.bias": (h,),
            p + "linear1.weight": (ff, h),
            p + "linear1.bias": (ff,),
            p + "linear2.weight": (h, ff),
            p + "linear2.bias": (h,),
            p + "norm1.weight": (h,),
            p + "norm1.bias": (h,),
            p + "norm2.weight": (h,),
            p + "norm2.bias": (h,),
        }
    return {k: torch.randn(s, generator=g) * 0.1 for k, s in shapes.items()}


def test_published_state_dict_loads_and_refuses_other_mismatches():
    cfg = ModelConfig(**SMALL)
    state = _published_state_dict(cfg)
    m = HistoPrism(cfg).eval()
    ignored = load_published_state_dict(m, {"model_state": state, "epoch": 7})
    assert ignored == sorted(k for k in state if k.startswith(("img_conv.", "img_norm.")))
    assert len(ignored) == 6
    for k, v in m.state_dict().items():
        assert torch.equal(v, state[k]), k
    # the loaded weights compute what a hand-written forward pass with them computes (the head)
    emb, onco, _ = _inputs()
    with torch.no_grad():
        h = m.transformer(m.input_proj(m.condition(emb, onco)).unsqueeze(0)).squeeze(0)
        z = torch.relu(
            torch.nn.functional.layer_norm(
                h @ state["gene_regression_head.0.weight"].T + state["gene_regression_head.0.bias"],
                (cfg.hidden_dim,),
                state["gene_regression_head.1.weight"],
                state["gene_regression_head.1.bias"],
            )
        )
        expect = z @ state["gene_regression_head.4.weight"].T + state["gene_regression_head.4.bias"]
        assert torch.allclose(m(emb, onco), expect, atol=1e-5)
    for bad, match in (
        (state | {"rnd_predictor.weight": torch.zeros(2)}, "unexpected 1"),
        ({k: v for k, v in state.items() if k != "input_proj.bias"}, "missing 1"),
        (state | {"input_proj.bias": torch.zeros(cfg.hidden_dim + 1)}, "shape mismatch"),
    ):
        with pytest.raises(InputError, match=match):
            load_published_state_dict(HistoPrism(cfg), bad)


def _published_weights(folder, path) -> tuple[list[str], list[str]]:
    """A published-format state dict for the synthetic cohort at ``path``; its panel and codes."""
    first = read_embeddings(folder / "embeddings" / "WSI00_BRCA.h5")[1]
    genes = [f"G{i:05d}" for i in range(300)]
    mcfg = ModelConfig(img_dim=first.shape[1], n_genes=len(genes), n_cancer_types=4, **FAST_MODEL)
    torch.save({"model_state": _published_state_dict(mcfg)}, path)
    return genes, ["BRCA", "COAD", "LUAD", "PRAD"]


def test_import_published_then_predict(tmp_path, model_inputs):
    """A published state dict becomes a checkpoint that predicts the metadata's test split."""
    folder, cfg = model_inputs
    genes, codes = _published_weights(folder, tmp_path / "published.pt")
    info = import_published(
        tmp_path / "published.pt", genes, codes, tmp_path / "ckpt.pt", cfg.data, transformer_heads=4
    )
    assert info["model_config"]["n_genes"] == 300 and len(info["ignored_keys"]) == 6
    out = predict(tmp_path / "ckpt.pt", tmp_path / "p.h5ad", device="cpu")
    assert out["n_wsi"] == 2 and out["truth"]
    with pytest.raises(InputError, match="cancer types"):
        import_published(tmp_path / "published.pt", genes, codes[:3], tmp_path / "x.pt", transformer_heads=4)
    with pytest.raises(InputError, match="panel lists"):
        import_published(tmp_path / "published.pt", genes[:5], codes, tmp_path / "x.pt", transformer_heads=4)


# ------------------------------------------------------------------------------------------- config
def test_example_configs():
    paper, released = load_config(example_config("paper")), load_config(example_config("released"))
    assert (paper.train.lr, paper.train.max_epochs, paper.train.patience) == (5e-4, 1000, 30)
    assert (released.train.lr, released.train.max_epochs, released.train.patience) == (5e-5, 5000, 30)
    for c in (paper, released):
        assert (c.model.hidden_dim, c.model.cross_attn_heads, c.model.transformer_heads) == (256, 4, 8)
        assert (c.model.transformer_layers, c.model.dropout, c.train.weight_decay) == (2, 0.1, 0.01)
        assert Path(c.data.metadata).is_absolute()
    with pytest.raises(InputError, match="unknown key"):
        from_dict({"train": {"learning_rate": 1}})
    with pytest.raises(InputError, match="unknown block"):
        from_dict({"optim": {}})


# -------------------------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def model_inputs(tmp_path_factory):
    """A synthetic cohort written as model inputs (10 WSIs: 7 train, 1 val, 2 test; 300 genes)."""
    from helpers import make_small

    from gpc_bench.synth import write_model_inputs

    cohort = make_small(n_wsi=10, n_genes=300, n_spots=(80, 140), n_modules=6, module_size=30)
    folder = tmp_path_factory.mktemp("model")
    path = write_model_inputs(
        cohort, folder, train={"max_epochs": 60, "patience": 10, "lr": 3e-3}, model=FAST_MODEL
    )
    from gpc_bench.io.gmt import GeneSet, write_gmt

    (folder / "pathways").mkdir()
    for coll, sets in cohort.gene_sets.items():
        write_gmt(folder / "pathways" / f"{coll}.gmt", [GeneSet(coll, n, tuple(g)) for n, g in sets.items()])
    return folder, load_config(path)


def test_pt_embeddings_read_like_h5(tmp_path, model_inputs):
    folder, _ = model_inputs
    barcodes, emb, coords = read_embeddings(folder / "embeddings" / "WSI01_LUAD.h5")
    assert coords is not None and emb.dtype == np.float32
    # the published format: {barcode (bytes or str): tensor [1, D]}, loaded with weights_only=True
    d = {
        (b.encode() if i % 2 else b): torch.from_numpy(e[None])
        for i, (b, e) in enumerate(zip(barcodes, emb, strict=True))
    }
    torch.save(d, tmp_path / "WSI01_LUAD_embeddings.pt")
    b2, e2, c2 = read_embeddings(tmp_path / "WSI01_LUAD_embeddings.pt")
    assert list(b2) == list(barcodes) and np.array_equal(e2, emb) and c2 is None


def test_barcode_and_gene_mismatches(tmp_path, model_inputs):
    import anndata as ad

    from gpc_bench.baselines.histoprism.data import Cohort

    folder, cfg = model_inputs
    expr = ad.read_h5ad(folder / "expression.h5ad")
    sub = expr[expr.obs["sample_id"] == "WSI00_BRCA"].copy()
    # a third of the spots lose their expression, and a panel gene is missing
    sub = sub[: int(sub.n_obs * 0.66), [g for g in sub.var_names if g != "G00003"]].copy()
    d = tmp_path / "expr"
    d.mkdir()
    sub.write_h5ad(d / "WSI00_BRCA.h5ad")
    data = dataclasses.replace(cfg.data, expression=str(d), genes=None)
    cohort = Cohort(data, genes=[f"G{i:05d}" for i in range(300)])
    with pytest.raises(InputError, match=r"only \d+ of \d+ embedding barcodes"):
        cohort.load("WSI00_BRCA")
    cohort = Cohort(
        dataclasses.replace(data, min_barcode_overlap=0.5), genes=[f"G{i:05d}" for i in range(300)]
    )
    wsi = cohort.load("WSI00_BRCA")
    assert len(wsi.barcodes) == sub.n_obs and list(wsi.barcodes) == list(sub.obs_names)
    assert np.isnan(wsi.target[:, 3]).all() and not np.isnan(np.delete(wsi.target, 3, 1)).any()
    assert np.array_equal(wsi.target[:, 4], sub[:, "G00004"].X.ravel())
    with pytest.raises(InputError, match="same gene ID style"):
        Cohort(dataclasses.replace(data, min_barcode_overlap=0.5), genes=["ENSG00000141510"]).load(
            "WSI00_BRCA"
        )


# ------------------------------------------------------------------------------------------ training
@pytest.fixture(scope="module")
def trained(model_inputs, tmp_path_factory):
    folder, cfg = model_inputs
    out = tmp_path_factory.mktemp("trained") / "run"
    summary = train(dataclasses.replace(cfg, out=str(out)), device="cpu")
    return out, summary


def test_training_writes_run_folder_and_checkpoint_round_trips(trained, model_inputs):
    out, summary = trained
    assert {"checkpoint.pt", "history.csv", "config.yml", "train_summary.json"} <= {
        p.name for p in out.iterdir()
    }
    assert summary["n_train_wsi"] == 7 and summary["n_val_wsi"] == 1
    import pandas as pd

    hist = pd.read_csv(out / "history.csv")
    assert len(hist) == summary["epochs"] and hist["val_mse"].idxmin() + 1 == summary["best_epoch"]
    assert hist["train_mse"].iloc[-1] < hist["train_mse"].iloc[0]
    model, ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["epoch"] == summary["best_epoch"] and ckpt["genes"][:2] == ["G00000", "G00001"]
    # a reloaded checkpoint predicts what the model did at its best epoch (its val MSE)
    from gpc_bench.baselines.histoprism.data import Cohort
    from gpc_bench.baselines.histoprism.train import evaluate

    cohort = Cohort(model_inputs[1].data)
    s, n = evaluate(model, cohort, cohort.sample_ids("val"), "cpu")
    assert s / n == pytest.approx(summary["best_val_mse"], rel=1e-6)


def test_training_is_deterministic(model_inputs, tmp_path):
    folder, cfg = model_inputs
    states = []
    for run, seed in (("a", 5), ("b", 5), ("c", 6)):
        c = dataclasses.replace(
            cfg, out=str(tmp_path / run), train=dataclasses.replace(cfg.train, max_epochs=3, seed=seed)
        )
        train(c, device="cpu")
        states.append(load_checkpoint(tmp_path / run / "checkpoint.pt")[1]["state_dict"])
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])
    with pytest.raises(InputError, match="not empty"):
        train(dataclasses.replace(cfg, out=str(tmp_path / "a")), device="cpu")


def test_trained_model_beats_mean_profile(trained, model_inputs, tmp_path):
    """On held-out WSIs the model must clearly beat the training-set mean profile, in GPC and MSE."""
    import anndata as ad

    import gpc_bench

    folder, cfg = model_inputs
    out, _ = trained
    predict(out / "checkpoint.pt", tmp_path / "pred.h5ad", device="cpu")
    pred = ad.read_h5ad(tmp_path / "pred.h5ad")
    truth = pred.layers["truth"]
    expr = ad.read_h5ad(folder / "expression.h5ad")
    train_ids = [s for s in expr.obs["sample_id"].unique() if s not in set(pred.obs["sample_id"])][:7]
    mean_profile = np.asarray(expr[expr.obs["sample_id"].isin(train_ids)].X.mean(0))
    mse_model = float(np.mean((pred.X - truth) ** 2))
    mse_mean = float(np.mean((mean_profile[None] - truth) ** 2))
    assert mse_model < 0.85 * mse_mean
    pw = folder / "pathways"  # the synthetic cohort's module-based and random sets
    gpc_model = gpc_bench.score(tmp_path / "pred.h5ad", pathways=[pw]).headline
    base = pred.copy()
    base.X = np.broadcast_to(mean_profile, pred.shape).astype(np.float32).copy()
    gpc_mean = gpc_bench.score(base, pathways=[pw]).headline
    for coll in ("gpc_hallmark", "gpc_go"):
        assert gpc_model[coll] > 0.15, gpc_model
        assert gpc_model[coll] > gpc_mean[coll] + 0.15


def test_train_predict_score_through_the_cli(model_inputs, tmp_path):
    from click.testing import CliRunner

    from gpc_bench.cli import main

    folder, _ = model_inputs
    run = CliRunner().invoke(
        main,
        [
            "-q",
            "model",
            "train",
            "--config",
            str(folder / "config.yml"),
            "--out",
            str(tmp_path / "run"),
            "--max-epochs",
            "2",
            "--device",
            "cpu",
        ],
    )
    assert run.exit_code == 0, run.output
    assert "trained 2 epochs" in run.output
    res = CliRunner().invoke(
        main,
        [
            "-q",
            "model",
            "predict",
            "--checkpoint",
            str(tmp_path / "run" / "checkpoint.pt"),
            "--out",
            str(tmp_path / "p.h5ad"),
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(
        main,
        [
            "-q",
            "score",
            str(tmp_path / "p.h5ad"),
            "--pathways",
            str(folder / "pathways"),
            "--out",
            str(tmp_path / "scored"),
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "scored" / "summary.json").read_text())
    assert summary["counts"]["n_wsi"] == 2
    bad = CliRunner().invoke(main, ["model", "train", "--config", str(tmp_path / "nope.yml")])
    assert bad.exit_code == 2 and "not found" in bad.output


def test_missing_torch_is_a_clear_error(monkeypatch, tmp_path):
    import importlib.util

    from click.testing import CliRunner

    from gpc_bench.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    res = CliRunner().invoke(main, ["model", "train", "--config", str(tmp_path / "c.yml")])
    assert res.exit_code == 2 and "gpc-bench[model]" in res.output


def test_importing_gpc_bench_does_not_import_torch():
    code = (
        "import sys, gpc_bench, gpc_bench.cli, gpc_bench.baselines.histoprism.config;"
        "gpc_bench.cli.main(['model', '--help'], standalone_mode=False);"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")


# ------------------------------------------------------------------------------------- distributed
def test_two_process_ddp_matches_one_process_gradient_average(model_inputs, tmp_path):
    """torchrun, 2 CPU processes (gloo), one WSI each per step == 1 process averaging 2 WSIs per step."""
    folder, cfg = model_inputs
    meta = (folder / "metadata.csv").read_text().splitlines()
    # 4 train WSIs and no validation: every epoch is kept, both runs write their last epoch
    keep = [meta[0]] + [line.replace(",val", ",test") for line in meta[1:5]]
    (tmp_path / "metadata.csv").write_text("\n".join(keep) + "\n")
    base = {
        "data": {
            "metadata": str(tmp_path / "metadata.csv"),
            "embeddings": str(folder / "embeddings"),
            "expression": str(folder / "expression.h5ad"),
        },
        "model": FAST_MODEL | {"dropout": 0.0},
        "train": {"max_epochs": 3, "lr": 3e-3, "seed": 11},
    }
    import yaml

    (tmp_path / "ddp.yml").write_text(yaml.safe_dump(base | {"out": str(tmp_path / "ddp")}))
    one = dict(base, train=base["train"] | {"wsis_per_step": 2}, out=str(tmp_path / "one"))
    (tmp_path / "one.yml").write_text(yaml.safe_dump(one))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd = torchrun + [
        "-m",
        "gpc_bench",
        "-q",
        "model",
        "train",
        "--config",
        str(tmp_path / "ddp.yml"),
        "--device",
        "cpu",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    train(from_dict(one), device="cpu")
    m_ddp, ck_ddp = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")
    m_one, ck_one = load_checkpoint(tmp_path / "one" / "checkpoint.pt")
    assert ck_ddp["epoch"] == ck_one["epoch"] == 3
    # float tolerance: all-reduce and loss averaging round differently, and Adam turns the rounding
    # noise of near-zero gradients (the key bias has none in exact arithmetic) into steps of up to lr
    for k, v in ck_one["state_dict"].items():
        assert torch.allclose(ck_ddp["state_dict"][k], v, atol=1e-4), (
            k,
            (ck_ddp["state_dict"][k] - v).abs().max(),
        )
    emb = torch.from_numpy(read_embeddings(folder / "embeddings" / "WSI09_LUAD.h5")[1])
    onco = torch.tensor([0.0, 0.0, 1.0, 0.0])
    with torch.no_grad():
        assert torch.allclose(m_ddp(emb, onco), m_one(emb, onco), atol=1e-4)
    s = json.loads((tmp_path / "ddp" / "train_summary.json").read_text())
    assert s["world_size"] == 2


def test_epochs_logged_once_and_no_nan_without_validation(model_inputs, tmp_path, caplog):
    import logging

    import pandas as pd

    folder, cfg = model_inputs
    meta = pd.read_csv(cfg.data.metadata)
    meta.loc[meta["split"] == "val", "split"] = "test"  # no validation split
    meta.to_csv(tmp_path / "meta.csv", index=False)
    data = dataclasses.replace(cfg.data, metadata=str(tmp_path / "meta.csv"))
    c = dataclasses.replace(cfg, data=data, out=str(tmp_path / "run"),
                            train=dataclasses.replace(cfg.train, max_epochs=3))  # fmt: skip
    with caplog.at_level(logging.INFO, logger="gpc_bench"):
        train(c, device="cpu")
    epochs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [m.split(":")[0] for m in epochs] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert not any("nan" in m or "val MSE" in m for m in epochs)


def test_interrupted_training_leaves_no_folder(model_inputs, tmp_path, monkeypatch):
    from gpc_bench.baselines.histoprism import train as train_mod

    folder, cfg = model_inputs

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "_fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(dataclasses.replace(cfg, out=str(tmp_path / "run")), device="cpu")
    assert list(tmp_path.iterdir()) == []


def test_imported_checkpoints_carry_log1p_and_predict_checks_the_truth(tmp_path, model_inputs):
    import anndata as ad

    folder, cfg = model_inputs
    genes, codes = _published_weights(folder, tmp_path / "published.pt")
    # the expression as raw counts, as HEST ships it
    expr = ad.read_h5ad(cfg.data.expression)
    counts = expr.copy()
    counts.X = np.rint(np.expm1(np.asarray(expr.X, dtype=np.float64)) * 5).astype(np.float32)
    counts.write_h5ad(tmp_path / "counts.h5ad")
    data = dataclasses.replace(cfg.data, expression=str(tmp_path / "counts.h5ad"), log1p=True)
    import_published(tmp_path / "published.pt", genes, codes, tmp_path / "ckpt.pt", data, transformer_heads=4)
    assert load_checkpoint(tmp_path / "ckpt.pt")[1]["run_config"]["data"]["log1p"] is True
    predict(tmp_path / "ckpt.pt", tmp_path / "p.h5ad", device="cpu")
    p = ad.read_h5ad(tmp_path / "p.h5ad")
    assert float(np.nanmax(p.layers["truth"])) < 15  # log1p of the counts, as the model's targets
    with pytest.raises(InputError, match="looks like raw counts .* log1p is off"):
        predict(tmp_path / "ckpt.pt", tmp_path / "q.h5ad", device="cpu", log1p=False)
    assert not (tmp_path / "q.h5ad").exists()


def test_published_config_and_panel_files_load_as_released(tmp_path, model_inputs):
    import yaml

    from gpc_bench.baselines.histoprism.data import read_gene_list

    folder, cfg = model_inputs
    (tmp_path / "stpath_genes.yaml").write_text(
        yaml.safe_dump({"genes": ["ENSG00000000003", "ENSG00000000005"]})
    )
    assert read_gene_list(tmp_path / "stpath_genes.yaml") == ["ENSG00000000003", "ENSG00000000005"]
    genes, codes = _published_weights(folder, tmp_path / "published.pt")
    released = {"transformer_heads": 4, "cross_attn_heads": 4, "onco_onehot_dim": 4,
                "conditioning_strategy": "cross_attention",
                "graph_config": {"conv_type": None, "n_conv_layers": 0, "knn": 8}}  # fmt: skip
    (tmp_path / "config.yml").write_text(yaml.safe_dump(released))
    info = import_published(tmp_path / "published.pt", genes, codes, tmp_path / "a.pt", cfg.data,
                            published_config=tmp_path / "config.yml")  # fmt: skip
    assert info["model_config"]["transformer_heads"] == 4  # from the released config, not assumed
    gat = released | {"graph_config": {"conv_type": "gat", "n_conv_layers": 1}}
    (tmp_path / "gat.yml").write_text(yaml.safe_dump(gat))
    with pytest.raises(InputError, match=r"n_conv_layers is 1 \(conv_type 'gat'\).*img_conv"):
        import_published(tmp_path / "published.pt", genes, codes, tmp_path / "b.pt", cfg.data,
                         published_config=tmp_path / "gat.yml")  # fmt: skip
    assert not (tmp_path / "b.pt").exists()
    (tmp_path / "wrong.yml").write_text(yaml.safe_dump(released | {"onco_onehot_dim": 29}))
    with pytest.raises(InputError, match="onco_onehot_dim is 29"):
        import_published(tmp_path / "published.pt", genes, codes, tmp_path / "c.pt", cfg.data,
                         published_config=tmp_path / "wrong.yml")  # fmt: skip
