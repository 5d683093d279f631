"""Shared fixtures: a seeded synthetic cohort, written files, and ../shared data (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import make_small

SHARED = Path(os.environ.get("GPC_BENCH_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared"))


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep the user cache dir (checksums, downloads) out of the tests: one temporary dir."""
    old = os.environ.get("GPC_BENCH_CACHE")
    os.environ["GPC_BENCH_CACHE"] = str(tmp_path_factory.mktemp("user-cache"))
    yield
    if old is None:
        os.environ.pop("GPC_BENCH_CACHE", None)
    else:
        os.environ["GPC_BENCH_CACHE"] = old


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (reference data for local runs); tests using it skip when it is absent."""
    data = SHARED.resolve() / "data"
    if not data.is_dir():
        pytest.skip(f"reference data not found at {data} (only present in the project's workspace)")
    return data


@pytest.fixture(scope="session")
def cohort():
    """A small seeded synthetic cohort (7 WSIs, 4 cancer types, 600 genes)."""
    return make_small()


@pytest.fixture(scope="session")
def cohort_files(cohort, tmp_path_factory):
    """The cohort written as h5ad files plus a pathway collection folder."""
    from gpc_bench.io.gmt import GeneSet, write_gmt

    d = tmp_path_factory.mktemp("cohort")
    paths = {"truth": d / "truth.h5ad", "pathways": d / "pathways"}
    cohort.truth.write_h5ad(paths["truth"])
    for name, a in cohort.predictions.items():
        paths[name] = d / f"pred_{name}.h5ad"
        a.write_h5ad(paths[name])
    paths["pathways"].mkdir()
    for coll, sets in cohort.gene_sets.items():
        write_gmt(paths["pathways"] / f"{coll}.gmt", [GeneSet(coll, n, tuple(g)) for n, g in sets.items()])
    return paths


@pytest.fixture(scope="session")
def scored_runs(cohort_files, tmp_path_factory):
    """Run folders of the good, noisy and mean models on the small cohort (name -> folder)."""
    from helpers import score_runs

    names = ("good", "noisy", "mean")
    return score_runs(cohort_files, tmp_path_factory.mktemp("runs"), {n: cohort_files[n] for n in names})
