"""Memory-mapped rows (gpc_bench.io.mapped) against h5py reads, and `score` through both paths."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from helpers import write_dense_h5ad

from gpc_bench import score
from gpc_bench.io.h5ad import H5adSource
from gpc_bench.io.mapped import row_offsets
from gpc_bench.metrics.pcc import kernel_name


def reads(**counts) -> dict:
    """``run_info['matrix_reads']`` with the given counts, the others zero."""
    return {"mmap": 0, "direct": 0, "h5py": 0, "h5py_not_cached": 0} | counts


@pytest.fixture
def matrix():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((53, 37)).astype(np.float32)
    x[5, 7] = np.nan  # bit patterns, NaN included, must come through unchanged
    return x


@pytest.mark.parametrize(
    "storage",
    [{}, {"chunks": (8, 37)}, {"chunks": (1, 37)}, {"chunks": (53, 37)}],
    ids=["contiguous", "chunks-8-rows", "chunks-1-row", "one-chunk"],
)
def test_mapped_rows_equal_h5py_rows(tmp_path, matrix, storage):
    src = H5adSource(write_dense_h5ad(tmp_path / "m.h5ad", matrix, **storage))
    rng = np.random.default_rng(1)
    for rows in (np.arange(53), np.arange(10, 30), rng.permutation(np.arange(3, 40)), np.array([52])):
        block = src.map_rows(rows)
        assert block is not None, storage
        got, want = block.rows(), src.read_rows(rows)
        assert got.shape == want.shape == (len(rows), 37)
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    src.close()


@pytest.mark.parametrize(
    "storage",
    [{"compression": "gzip"}, {"chunks": (8, 16)}, {"shuffle": True, "chunks": (8, 37)}, {"dtype": "f8"}],
    ids=["gzip", "partial-width-chunks", "shuffle-filter", "float64"],
)
def test_unmappable_storage_falls_back(tmp_path, matrix, storage):
    src = H5adSource(write_dense_h5ad(tmp_path / "m.h5ad", matrix, **storage))
    assert src.map_rows(np.arange(5)) is None
    np.testing.assert_array_equal(src.read_rows(np.arange(5)), matrix[:5].astype(np.float32))
    src.close()


def test_unwritten_chunks_and_spread_rows_are_not_mapped(tmp_path, matrix):
    path = tmp_path / "m.h5ad"
    write_dense_h5ad(path, matrix, chunks=(8, 37))
    with h5py.File(path, "a") as f:
        f.create_dataset("partial", shape=(53, 37), dtype="f4", chunks=(8, 37))[:8] = matrix[:8]
        assert row_offsets(f["partial"]) is None  # chunks beyond row 8 were never allocated
        assert row_offsets(f["X"]) is not None
    src = H5adSource(path)
    assert src.map_rows(np.array([0, 52])) is None  # 2 rows spread over the whole matrix
    assert src.map_rows(np.array([0, 1, 2, 3])) is not None
    src.close()


def test_sparse_matrix_is_not_mapped(tmp_path, cohort):
    a = cohort.truth.copy()
    a.X = sp.csr_matrix(a.X)
    a.write_h5ad(tmp_path / "sparse.h5ad")
    src = H5adSource(tmp_path / "sparse.h5ad")
    assert src.map_rows(np.arange(4)) is None
    src.close()


def test_userblock_file_maps_or_falls_back_but_never_misreads(tmp_path, matrix):
    path = write_dense_h5ad(tmp_path / "ub.h5ad", matrix, file_kw={"userblock_size": 512})
    src = H5adSource(path)
    block = src.map_rows(np.arange(53))
    if block is not None:
        np.testing.assert_array_equal(block.rows().view(np.uint32), matrix.view(np.uint32))
    src.close()


def _mapped_paths(path) -> list[str]:
    with open("/proc/self/maps") as f:
        return [line for line in f if str(path) in line]


@pytest.mark.skipif(kernel_name() != "numba", reason="the mapped path runs with the numba kernel")
def test_score_through_mmap_equals_h5py_and_releases_maps(cohort_files, monkeypatch):
    results = {}
    for mode in ("1", "0"):
        monkeypatch.setenv("GPC_BENCH_KERNEL", "numba")
        monkeypatch.setenv("GPC_BENCH_MMAP", mode)
        results[mode] = score(
            cohort_files["good"], cohort_files["truth"], pathways=cohort_files["pathways"], checksum=False
        )
    n_wsi = results["1"].summary["counts"]["n_wsi"]
    assert results["1"].run_info["matrix_reads"] == reads(mmap=2 * n_wsi)
    assert results["0"].run_info["matrix_reads"] == reads(h5py=2 * n_wsi)
    for table in ("gene_scores", "pathway_wsi_scores", "pathway_scores", "hvg_scores", "gene_variance"):
        pd.testing.assert_frame_equal(getattr(results["1"], table), getattr(results["0"], table))
    if not _mapped_paths("/"):
        pytest.skip("/proc/self/maps is not readable here")
    assert _mapped_paths(cohort_files["truth"]) == [] and _mapped_paths(cohort_files["good"]) == []


@pytest.mark.skipif(kernel_name() != "numba", reason="the mapped path runs with the numba kernel")
def test_mapped_shuffled_truth_matches_scipy_reference(cohort, tmp_path, monkeypatch):
    """Dense truth with spots (within WSIs) and genes in another order: rows gathered by offset."""
    from helpers import reference_scores

    from gpc_bench.io.gmt import GeneSet, write_gmt

    monkeypatch.setenv("GPC_BENCH_KERNEL", "numba")
    rng = np.random.default_rng(5)
    sample = cohort.truth.obs["sample_id"].astype(str).to_numpy()
    within = np.lexsort((rng.random(len(sample)), sample))  # WSIs stay blocks, spots shuffled
    truth = cohort.truth[within].copy()
    truth = truth[:, rng.permutation(truth.n_vars)].copy()
    truth.write_h5ad(tmp_path / "truth.h5ad")
    cohort.predictions["good"].write_h5ad(tmp_path / "pred.h5ad")
    sets = {n: g for s in cohort.gene_sets.values() for n, g in s.items()}
    write_gmt(tmp_path / "sets.gmt", [GeneSet("c", n, tuple(g)) for n, g in sets.items()])
    res = score(
        tmp_path / "pred.h5ad", tmp_path / "truth.h5ad", pathways=tmp_path / "sets.gmt", checksum=False
    )
    assert res.run_info["matrix_reads"]["h5py"] == 0
    r_ref, _, gpc_ref = reference_scores(truth, cohort.predictions["good"], sets)
    gs = res.gene_scores.set_index(["sample_id", "gene"])["pcc"]
    np.testing.assert_allclose(gs.loc[r_ref.index].to_numpy(), r_ref.to_numpy(), rtol=0, atol=1e-10)
    ps = res.pathway_scores.set_index("pathway")["gpc"]
    np.testing.assert_allclose(ps.loc[gpc_ref.index].to_numpy(), gpc_ref.to_numpy(), rtol=0, atol=1e-10)


def test_byte_range_and_read_ahead_hint(tmp_path, matrix):
    from gpc_bench.io.mapped import advise

    path = write_dense_h5ad(tmp_path / "m.h5ad", matrix)
    src = H5adSource(path)
    base = src._file["X"].id.get_offset()
    rowbytes = 37 * 4
    assert src.byte_range(np.array([12, 10, 11])) == (base + 10 * rowbytes, base + 13 * rowbytes)
    assert src.byte_range(np.array([0, 52])) is None  # spread out: no range, no hint
    advise(path, *src.byte_range(np.arange(53)))  # a hint: returns without error
    assert src.byte_range(np.array([], dtype=np.int64)) is None
    src.close()


@pytest.mark.skipif(kernel_name() != "numba", reason="the mapped path runs with the numba kernel")
def test_score_keeps_at_most_two_wsis_mapped(cohort_files, monkeypatch):
    """Memory stays bounded by two WSIs: WSI k is unmapped before WSI k + 2 is mapped.

    The reader runs synchronously here (each read happens at submit), the worst case of timing.
    """
    import weakref
    from concurrent.futures import Future

    import gpc_bench.io.stream

    class Immediate:
        def __init__(self, *args, **kw):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, fn, *args):
            fut = Future()
            fut.set_result(fn(*args))
            return fut

        def shutdown(self, wait=True):
            pass

    monkeypatch.setattr(gpc_bench.io.stream, "ThreadPoolExecutor", Immediate)

    live = {"now": 0, "max": 0}
    original = H5adSource.map_rows

    def counting(self, rows, layer=None, populate=True):
        block = original(self, rows, layer, populate)
        if block is not None and self.role == "truth":
            live["now"] += 1
            live["max"] = max(live["max"], live["now"])
            weakref.finalize(block.buf, lambda: live.__setitem__("now", live["now"] - 1))
        return block

    monkeypatch.setattr(H5adSource, "map_rows", counting)
    monkeypatch.setenv("GPC_BENCH_KERNEL", "numba")
    kw = {"pathways": cohort_files["pathways"], "checksum": False}
    res = score(cohort_files["good"], cohort_files["truth"], **kw)
    assert res.run_info["matrix_reads"]["mmap"] == 2 * res.summary["counts"]["n_wsi"]
    assert live["max"] == 2 and live["now"] == 0


def _evict(path) -> None:
    """Drop a file from the page cache (clean pages only: it is synced first)."""
    import os

    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_resident_fraction(tmp_path):
    import os

    from gpc_bench.io.mapped import resident_fraction

    path = tmp_path / "big.bin"
    path.write_bytes(np.random.default_rng(0).bytes(32 << 20))
    size = os.path.getsize(path)
    path.read_bytes()
    assert resident_fraction(path, 0, size) == 1.0
    assert resident_fraction(path, 5, 5) == 1.0  # empty range: nothing to read
    _evict(path)
    first = resident_fraction(path, 0, size)
    if first == 1.0:
        pytest.skip("this file system keeps files cached (tmpfs?) or cannot probe them")
    assert first == 0.0
    _evict(path)
    with open(path, "rb") as f:
        f.seek(size - (8 << 20))
        f.read()  # the last quarter back in the cache
    assert 0.2 <= resident_fraction(path, 0, size) <= 0.3


@pytest.mark.skipif(kernel_name() != "numba", reason="the mapped path runs with the numba kernel")
def test_uncached_wsis_are_read_with_h5py(cohort_files, monkeypatch):
    """A WSI that must come from disk is read in one go rather than faulted in page by page."""
    import gpc_bench.io.stream

    monkeypatch.setenv("GPC_BENCH_KERNEL", "numba")
    monkeypatch.delenv("GPC_BENCH_DIRECT_IO", raising=False)  # auto: this cohort fits in memory
    kw = {"pathways": cohort_files["pathways"], "checksum": False}
    warm = score(cohort_files["good"], cohort_files["truth"], **kw)
    n_wsi = warm.summary["counts"]["n_wsi"]
    assert warm.run_info["matrix_reads"] == reads(mmap=2 * n_wsi)
    truth = str(cohort_files["truth"])
    monkeypatch.setattr(
        gpc_bench.io.stream, "resident_fraction", lambda path, a, b: 0.0 if str(path) == truth else 1.0
    )
    cold = score(cohort_files["good"], cohort_files["truth"], **kw)
    assert cold.run_info["matrix_reads"] == reads(mmap=n_wsi, h5py=n_wsi, h5py_not_cached=n_wsi)
    for table in ("gene_scores", "pathway_scores", "gene_variance"):
        pd.testing.assert_frame_equal(getattr(cold, table), getattr(warm, table))


@pytest.mark.skipif(kernel_name() != "numba", reason="the mapped path runs with the numba kernel")
@pytest.mark.parametrize(("resident", "populate"), [(1.0, False), (0.9, True)])
def test_partly_cached_wsis_are_prefaulted(cohort_files, monkeypatch, resident, populate):
    """Fully cached WSIs are faulted in by the kernel threads; partly cached ones are pre-faulted
    on the reader thread, which then waits for the disk instead of the kernel."""
    import gpc_bench.io.stream

    seen = []
    original = H5adSource.map_rows

    def recording(self, rows, layer=None, populate=True):
        seen.append(populate)
        return original(self, rows, layer, populate)

    monkeypatch.setattr(H5adSource, "map_rows", recording)
    monkeypatch.setattr(gpc_bench.io.stream, "resident_fraction", lambda path, a, b: resident)
    monkeypatch.setenv("GPC_BENCH_KERNEL", "numba")
    kw = {"pathways": cohort_files["pathways"], "checksum": False}
    res = score(cohort_files["good"], cohort_files["truth"], **kw)
    assert res.run_info["matrix_reads"]["mmap"] == len(seen) == 2 * res.summary["counts"]["n_wsi"]
    assert set(seen) == {populate}
