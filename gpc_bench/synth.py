"""A seeded synthetic spatial-transcriptomics cohort with planted pathway structure.

Used by ``gpc-bench demo``, the tests and the benchmarks.  Counts follow a
negative binomial with a log-normal gene mean, so the mean-variance relation
and the share of zeros look like real ST data.  Genes of a *module* share a
smooth spatial activity field; the pathways built on modules carry signal a
model can recover, the random pathways do not.

Prediction kinds
----------------
``good``   the expected log1p expression given the true module activities (plus mild noise)
``noisy``  attenuated activities and heavy Gaussian noise
``mean``   the per-cancer-type mean profile (constant within a WSI: a null control)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    import anndata

from dataclasses import dataclass, field

import numpy as np

CANCER_TYPES = ("BRCA", "LUAD", "COAD", "PRAD")


@dataclass
class SyntheticCohort:
    """Truth, predictions and pathways of a synthetic cohort.

    Attributes
    ----------
    truth
        AnnData: log1p counts in ``X``, ``obs`` with ``sample_id`` and
        ``cancer_type``, ``obsm['spatial']``.
    predictions
        Model name -> AnnData with the same obs, predicted log1p in ``X``.
    gene_sets
        Collection name -> {pathway name: genes}.
    modules
        Module index -> gene symbols carrying the planted signal.
    signal_pathways
        Names of the pathways built on a module.
    activities
        Sample id -> (spots x modules) true module activities (what :func:`make_embeddings` encodes).
    recovered
        Model name -> the signal pathways that model's predictions carry. ``good`` recovers every
        module, ``partial`` every other module (and unrelated spatial activity for the rest),
        ``noisy`` every module weakly, ``mean`` none.
    """

    truth: anndata.AnnData
    predictions: dict[str, anndata.AnnData]
    gene_sets: dict
    modules: dict
    signal_pathways: list = field(default_factory=list)
    recovered: dict = field(default_factory=dict)
    activities: dict = field(default_factory=dict)


def _field(rng, coords: np.ndarray, n_bumps: int = 3) -> np.ndarray:
    span = coords.max(0) - coords.min(0) + 1
    centres = coords.min(0) + rng.random((n_bumps, 2)) * span
    widths = span.mean() * rng.uniform(0.15, 0.35, n_bumps)
    signs = rng.choice([-1.0, 1.0], n_bumps)
    d2 = ((coords[:, None, :] - centres[None]) ** 2).sum(-1)
    f = (signs * np.exp(-d2 / (2 * widths**2))).sum(1)
    return (f - f.mean()) / (f.std() + 1e-12)


def _gene_sets(seed: int, symbols, module_genes, gene_module, captured):
    """Pathways of the cohort: module-based ones (with some off-module genes) and random ones,
    drawn from their own random stream; the names each model recovers."""
    n_modules, module_size = module_genes.shape
    n_genes = len(symbols)
    prng = np.random.default_rng(seed + 1)
    other = np.flatnonzero(gene_module < 0)

    def module_set(m, size):
        core = prng.choice(module_genes[m], min(int(size * 0.8), module_size), replace=False)
        extra = prng.choice(other, size - len(core), replace=False)
        return symbols[np.concatenate([core, extra])].tolist()

    hallmark, go, signal = {}, {}, []
    recovered = {"good": signal, "noisy": signal, "partial": [], "mean": []}
    half = n_modules // 2
    for m in range(half):
        name = f"HALLMARK_MODULE_{m + 1}"
        hallmark[name] = module_set(m, 50)
        signal.append(name)
        if captured[m]:
            recovered["partial"].append(name)
    for k in range(4):
        hallmark[f"HALLMARK_RANDOM_{k + 1}"] = symbols[prng.choice(n_genes, 40, replace=False)].tolist()
    for m in range(half, n_modules):
        name = f"GOBP_MODULE_{m + 1}"
        go[name] = module_set(m, int(prng.integers(50, 60)))
        signal.append(name)
        if captured[m]:
            recovered["partial"].append(name)
    for k in range(8):
        size = int(prng.integers(50, 101))
        go[f"GOBP_RANDOM_{k + 1}"] = symbols[prng.choice(n_genes, size, replace=False)].tolist()
    # genes the panel does not have, as real gene sets do
    hallmark["HALLMARK_RANDOM_1"] += ["NOTINPANEL1", "NOTINPANEL2"]
    go["GOCC_TINY"] = symbols[prng.choice(n_genes, 5, replace=False)].tolist()
    return hallmark, go, signal, recovered


def _anndatas(obs_frames, symbols, ensembl: bool, coords_all, truth_blocks, models: dict):
    """The truth and the models' predictions as AnnData (one ``obs``, ``var`` and ``spatial``);
    the ``mean`` model predicts each cancer type's mean truth."""
    import anndata as ad
    import pandas as pd

    n_genes = len(symbols)
    obs = pd.concat(obs_frames)
    obs["sample_id"] = obs["sample_id"].astype("category")
    obs["cancer_type"] = obs["cancer_type"].astype("category")
    if ensembl:
        var = pd.DataFrame(
            {"gene_symbol": symbols},
            index=[f"ENSG{90000000000 + i:011d}" for i in range(n_genes)],
        )
    else:
        var = pd.DataFrame(index=symbols)
    spatial = np.concatenate(coords_all)
    truth_x = np.concatenate(truth_blocks)

    def adata(x):
        a = ad.AnnData(X=x, obs=obs.copy(), var=var.copy())
        a.obsm["spatial"] = spatial.copy()
        return a

    truth = adata(truth_x)
    mean_pred = np.empty_like(truth_x)
    ct = obs["cancer_type"].to_numpy()
    for c in sorted(set(ct)):
        sel = ct == c
        mean_pred[sel] = truth_x[sel].mean(0)
    predictions = {name: adata(np.concatenate(blocks)) for name, blocks in models.items()}
    predictions["mean"] = adata(mean_pred)

    return truth, predictions


def make_cohort(
    n_wsi: int = 10,
    n_genes: int = 2000,
    n_spots: tuple[int, int] = (120, 240),
    cancer_types: tuple[str, ...] = CANCER_TYPES,
    n_modules: int = 10,
    module_size: int = 60,
    seed: int = 0,
    ensembl: bool = False,
) -> SyntheticCohort:
    """Build the cohort.

    Parameters
    ----------
    n_wsi, n_genes
        Number of WSIs (cancer types are assigned round-robin) and panel size.
    n_spots
        Range of spots per WSI.
    n_modules, module_size
        Co-expressed gene modules (the planted pathway signal).
    seed
        Everything is a function of the seed.
    ensembl
        Use Ensembl-style IDs as ``var_names`` with symbols in ``var['gene_symbol']``.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    symbols = np.array([f"G{i:05d}" for i in range(n_genes)], dtype=object)
    log_mu = rng.normal(-0.5, 1.4, n_genes)
    # modules use moderately to highly expressed genes, so their signal is measurable
    candidates = np.argsort(-log_mu)[: max(n_modules * module_size, n_genes // 2)]
    module_genes = rng.choice(candidates, n_modules * module_size, replace=False).reshape(
        n_modules, module_size
    )
    gene_module = np.full(n_genes, -1)
    for m, genes in enumerate(module_genes):
        gene_module[genes] = m
    loading = rng.uniform(0.4, 0.9, n_genes) * (gene_module >= 0)
    type_shift = {c: rng.normal(0, 0.5, n_genes) * (rng.random(n_genes) < 0.3) for c in cancer_types}
    dispersion = 4.0

    obs_frames, truth_blocks, good, noisy, partial, types, coords_all = [], [], [], [], [], [], []
    activities = {}
    rng_p = np.random.default_rng([seed, 2])  # own stream: adding this model changes no other
    captured = np.arange(n_modules) % 2 == 0  # the partial model recovers every other module
    for w in range(n_wsi):
        ctype = cancer_types[w % len(cancer_types)]
        n = int(rng.integers(n_spots[0], n_spots[1] + 1))
        side = int(np.ceil(np.sqrt(n)))
        grid = np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2)[:n]
        coords = grid.astype(np.float64)
        act = np.stack([_field(rng, coords) for _ in range(n_modules)], 1)  # (n, modules)
        lib = rng.lognormal(0, 0.25, n)
        spot_act = np.zeros((n, n_genes))
        mod = gene_module >= 0
        spot_act[:, mod] = act[:, gene_module[mod]] * loading[mod]
        log_lam = log_mu + type_shift[ctype] + spot_act + np.log(lib)[:, None]
        lam = np.exp(log_lam)
        counts = rng.poisson(rng.gamma(dispersion, lam / dispersion))
        truth_blocks.append(np.log1p(counts).astype(np.float32))
        # good model: true activities with mild noise, expected log1p
        act_g = act + rng.normal(0, 0.3, act.shape)
        sa = np.zeros((n, n_genes))
        sa[:, mod] = act_g[:, gene_module[mod]] * loading[mod]
        lam_g = np.exp(log_mu + type_shift[ctype] + sa + 0.5 * np.log(lib)[:, None])
        good.append(np.log1p(lam_g).astype(np.float32))
        # partial model: like the good one for the captured modules, unrelated activity elsewhere
        act_p = np.where(captured, act, 0.0) + rng_p.normal(0, 0.3, act.shape)
        act_p[:, ~captured] = np.stack([_field(rng_p, coords) for _ in range(int((~captured).sum()))], 1)
        sp = np.zeros((n, n_genes))
        sp[:, mod] = act_p[:, gene_module[mod]] * loading[mod]
        lam_p = np.exp(log_mu + type_shift[ctype] + sp + 0.5 * np.log(lib)[:, None])
        partial.append(np.log1p(lam_p).astype(np.float32))
        # noisy model: attenuated activities, strong noise
        act_n = 0.3 * act + rng.normal(0, 1.0, act.shape)
        sa[:, mod] = act_n[:, gene_module[mod]] * loading[mod]
        lam_n = np.exp(log_mu + type_shift[ctype] + sa)
        noisy.append((np.log1p(lam_n) + rng.normal(0, 0.5, lam_n.shape)).clip(0).astype(np.float32))
        sample = f"WSI{w:02d}_{ctype}"
        obs_frames.append(
            pd.DataFrame(
                {"sample_id": sample, "cancer_type": ctype},
                index=[f"{sample}:{int(x)}x{int(y)}" for x, y in grid],
            )
        )
        types.append(ctype)
        coords_all.append(coords * 100.0 + 50.0)
        activities[sample] = act

    truth, predictions = _anndatas(
        obs_frames, symbols, ensembl, coords_all, truth_blocks,
        {"good": good, "partial": partial, "noisy": noisy},
    )  # fmt: skip
    hallmark, go, signal, recovered = _gene_sets(seed, symbols, module_genes, gene_module, captured)
    modules = {m: symbols[g].tolist() for m, g in enumerate(module_genes)}
    return SyntheticCohort(
        truth, predictions, {"hallmark": hallmark, "go": go}, modules, signal, recovered, activities
    )


def make_embeddings(cohort: SyntheticCohort, dim: int = 32, noise: float = 0.5, seed: int = 0) -> dict:
    """Patch embeddings that encode each spot's true module activities, as a foundation model might.

    Each embedding is a fixed random linear map of the spot's module activities plus Gaussian noise,
    so a model can learn the expression back from it; nothing about the cancer type is encoded (the
    reference model gets that through its conditioning).

    Parameters
    ----------
    cohort
        A cohort from :func:`make_cohort`.
    dim
        Embedding width.
    noise
        Standard deviation of the added noise (the activities have unit variance).
    seed
        Seeds the map and the noise; the cohort itself is not changed.

    Returns
    -------
    dict
        Sample id -> ``{"barcodes", "embeddings" (float32, spots x dim), "coords"}`` in the truth's
        spot order.
    """
    rng = np.random.default_rng([seed, 7])
    n_modules = next(iter(cohort.activities.values())).shape[1]
    w = rng.normal(0, 1 / np.sqrt(n_modules), (n_modules, dim))
    obs = cohort.truth.obs
    spatial = cohort.truth.obsm["spatial"]
    out = {}
    for sample, act in cohort.activities.items():
        rows = np.flatnonzero(obs["sample_id"].to_numpy() == sample)
        emb = act @ w + rng.normal(0, noise, (len(rows), dim))
        out[sample] = {
            "barcodes": obs.index[rows].to_numpy(dtype=str),
            "embeddings": emb.astype(np.float32),
            "coords": spatial[rows].astype(np.float32),
        }
    return out


def write_model_inputs(
    cohort: SyntheticCohort,
    folder: str | Path,
    splits: dict | None = None,
    dim: int = 32,
    noise: float = 0.5,
    seed: int = 0,
    train: dict | None = None,
    model: dict | None = None,
) -> Path:
    """Write a cohort as reference-model inputs: embeddings, expression, metadata and a config.

    Files: ``embeddings/<sample_id>.h5`` (HEST style), ``expression.h5ad`` (the truth, log1p),
    ``metadata.csv`` and ``config.yml`` (relative paths; ``out: run``).

    Parameters
    ----------
    cohort
        From :func:`make_cohort`.
    folder
        Where to write (created).
    splits
        Sample id -> ``train``/``val``/``test``; default: the last two WSIs test, the one before val.
    dim, noise, seed
        Passed to :func:`make_embeddings`.
    train, model
        Extra keys of the config's ``train`` and ``model`` blocks.

    Returns
    -------
    pathlib.Path
        The config file.
    """
    from pathlib import Path

    import h5py
    import pandas as pd
    import yaml

    folder = Path(folder)
    (folder / "embeddings").mkdir(parents=True, exist_ok=True)
    emb = make_embeddings(cohort, dim=dim, noise=noise, seed=seed)
    samples = list(emb)
    if splits is None:
        splits = {s: "train" for s in samples[:-3]} | {samples[-3]: "val"} | {s: "test" for s in samples[-2:]}
    types = cohort.truth.obs.groupby("sample_id", observed=True)["cancer_type"].first()
    pd.DataFrame(
        {
            "sample_id": samples,
            "cancer_type": [types[s] for s in samples],
            "split": [splits[s] for s in samples],
        }
    ).to_csv(folder / "metadata.csv", index=False)
    for s, d in emb.items():
        with h5py.File(folder / "embeddings" / f"{s}.h5", "w") as f:
            f["embeddings"] = d["embeddings"]
            f["barcodes"] = np.array([b.encode() for b in d["barcodes"]])[:, None]  # HEST: N x 1 bytes
            f["coords"] = d["coords"]
    cohort.truth.write_h5ad(folder / "expression.h5ad")
    cfg = {
        "data": {"metadata": "metadata.csv", "embeddings": "embeddings", "expression": "expression.h5ad"},
        "model": model or {},
        "train": train or {},
        "out": "run",
    }
    (folder / "config.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return folder / "config.yml"
