"""Direct-I/O reads (gpc_bench.io.direct) against h5py reads, the auto decision, and `score` through them."""

from __future__ import annotations

import errno
import os
import threading

import h5py
import numpy as np
import pandas as pd
import pytest
from helpers import write_dense_h5ad

from gpc_bench import InputError, score
from gpc_bench.io import direct
from gpc_bench.io.h5ad import H5adSource
from gpc_bench.metrics.pcc import kernel_name


@pytest.fixture
def matrix():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 211)).astype(np.float32)  # rows of 844 bytes: not block-aligned
    x[7, 9] = np.inf  # bit patterns come through unchanged
    return x


def _direct_or_skip(src: H5adSource, rows: np.ndarray):
    buf = direct.aligned_empty(src.direct_bytes(rows))
    block = src.read_rows_direct(rows, None, buf)
    if block is None and src.byte_range(rows) is not None:
        pytest.skip("this file system refuses O_DIRECT (tmpfs?)")
    return block


@pytest.mark.parametrize(
    "storage", [{}, {"chunks": (16, 211)}, {"chunks": (1, 211)}], ids=["contiguous", "chunks-16", "chunks-1"]
)
def test_direct_rows_equal_h5py_rows(tmp_path, matrix, storage):
    src = H5adSource(write_dense_h5ad(tmp_path / "m.h5ad", matrix, **storage))
    rng = np.random.default_rng(1)
    for rows in (np.arange(300), np.arange(17, 123), rng.permutation(np.arange(40, 90)), np.array([299])):
        block = _direct_or_skip(src, rows)
        assert block is not None
        got, want = block.rows(), src.read_rows(rows)
        assert got.shape == want.shape == (len(rows), 211)
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    src.close()


def test_direct_needs_an_aligned_buffer_large_enough(tmp_path, matrix):
    src = H5adSource(write_dense_h5ad(tmp_path / "m.h5ad", matrix))
    rows = np.arange(100)
    need = src.direct_bytes(rows)
    assert need % direct.ALIGN == 0 and need >= 100 * 211 * 4
    buf = direct.aligned_empty(need)
    assert buf.ctypes.data % direct.ALIGN == 0 and buf.nbytes == need
    with pytest.raises(ValueError, match="aligned buffer"):
        src.read_rows_direct(rows, None, buf[: need - direct.ALIGN])
    with pytest.raises(ValueError, match="aligned buffer"):
        src.read_rows_direct(rows, None, direct.aligned_empty(need + 8)[8:])
    src.close()


def test_direct_falls_back_when_refused_or_short(tmp_path, matrix, monkeypatch):
    src = H5adSource(write_dense_h5ad(tmp_path / "m.h5ad", matrix))
    rows = np.arange(300)
    buf = direct.aligned_empty(src.direct_bytes(rows))
    _direct_or_skip(src, rows)
    offsets = src._offsets(None)
    beyond = offsets + os.path.getsize(src.path)  # rows past the end of the file
    assert direct.read_rows(src.path, beyond, rows, 211, buf) is None
    real_open = os.open

    def refuse(path, flags, *args):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refuse)
    assert src.read_rows_direct(rows, None, buf) is None
    src.close()


def test_decide(monkeypatch):
    gib = 2**30
    monkeypatch.setattr(direct, "available_memory", lambda: 20 * gib)
    monkeypatch.delenv("GPC_BENCH_DIRECT_IO", raising=False)
    on, why = direct.decide(15 * gib, 1 * gib)  # 16 GiB = 80% of 20 GiB: still fits
    assert not on and why.startswith("auto: fits") and "16.0 GiB" in why
    on, why = direct.decide(15 * gib, 2 * gib)  # 17 GiB > 80% of 20 GiB
    assert on and "too large" in why and "17.0 GiB" in why and "20.0 GiB" in why
    monkeypatch.setattr(direct, "available_memory", lambda: None)
    assert direct.decide(100 * gib, gib) == (False, "available memory unknown")
    for value, want in (("1", True), ("on", True), ("0", False), ("OFF", False)):
        monkeypatch.setenv("GPC_BENCH_DIRECT_IO", value)
        assert direct.decide(1, 1)[0] is want
    monkeypatch.setenv("GPC_BENCH_DIRECT_IO", "sometimes")
    with pytest.raises(InputError, match="GPC_BENCH_DIRECT_IO"):
        direct.decide(1, 1)


def test_available_memory_reads_meminfo():
    mem = direct.available_memory()
    if not os.path.exists("/proc/meminfo"):
        assert mem is None
    else:
        assert mem is not None and 0 < mem <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


TABLES = ("gene_scores", "pathway_wsi_scores", "pathway_scores", "hvg_scores", "gene_variance")
needs_numba = pytest.mark.skipif(kernel_name() != "numba", reason="direct reads feed the numba kernel")


@pytest.fixture
def small_chunks(cohort_files, monkeypatch):
    """Direct reads in chunks of 7 spots (the WSIs have dozens), the numba kernel, auto mode.

    Returns a function that scores the good model with the given residency and memory."""
    import gpc_bench.io.stream as stream

    with h5py.File(cohort_files["truth"], "r") as f:
        n_vars = f["X"].shape[1]
    monkeypatch.setattr(stream, "CHUNK_BYTES", 7 * 4 * n_vars)
    monkeypatch.setenv("GPC_BENCH_KERNEL", "numba")
    monkeypatch.delenv("GPC_BENCH_DIRECT_IO", raising=False)

    def run(resident=lambda path: 1.0, memory=None, truth=None, **kw):
        monkeypatch.setattr(stream, "resident_fraction", lambda path, a, b: resident(str(path)))
        if memory is not None:
            monkeypatch.setattr(direct, "available_memory", lambda: memory)
        truth = cohort_files["truth"] if truth is None else truth
        return score(cohort_files["good"], truth, pathways=cohort_files["pathways"], checksum=False, **kw)

    return run


def reads(**counts) -> dict:
    """``run_info['matrix_reads']`` with the given counts, the others zero."""
    return {"mmap": 0, "direct": 0, "h5py": 0, "h5py_not_cached": 0} | counts


def _same_tables(a, b) -> None:
    for table in TABLES:
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table))


def _skip_without_o_direct(res) -> None:
    if res.run_info["matrix_reads"]["direct"] == 0:
        pytest.skip("this file system refuses O_DIRECT (tmpfs?)")


@needs_numba
def test_score_with_direct_reads_equals_mapped(small_chunks, monkeypatch):
    """Uncached WSIs of a cohort too large to cache are read past the page cache in row chunks,
    through four reused buffers; the tables are the same bits as from memory maps."""
    warm = small_chunks(cluster="spot", cluster_spots=100)
    n_wsi = warm.summary["counts"]["n_wsi"]
    assert warm.run_info["direct_io"].startswith("auto: fits")
    assert warm.run_info["matrix_reads"]["mmap"] == 2 * n_wsi
    allocations = []
    real = direct.aligned_empty
    monkeypatch.setattr(direct, "aligned_empty", lambda n: allocations.append(n) or real(n))
    cold = small_chunks(lambda path: 0.0, memory=1 << 20, cluster="spot", cluster_spots=100)  # 1 MiB free
    assert cold.run_info["direct_io"].startswith("auto: too large")
    _skip_without_o_direct(cold)
    assert cold.run_info["matrix_reads"] == reads(direct=2 * n_wsi)
    assert len(allocations) == 4  # two slots per file, reused across chunks and WSIs
    _same_tables(cold, warm)
    assert cold.summary["clustering"] == warm.summary["clustering"]
    assert set(cold.summary["clustering"]["predictions"]) >= {"ami", "ari"}


@needs_numba
def test_direct_next_to_a_cached_file(small_chunks, cohort_files):
    """Truth from disk, predictions cached: chunks of the truth read directly, of the predictions
    taken from one mapping per WSI."""
    warm = small_chunks()
    n_wsi = warm.summary["counts"]["n_wsi"]
    truth = str(cohort_files["truth"])
    mixed = small_chunks(lambda path: 0.0 if path == truth else 1.0, memory=1 << 20)
    _skip_without_o_direct(mixed)
    assert mixed.run_info["matrix_reads"] == reads(mmap=n_wsi, direct=n_wsi)
    _same_tables(mixed, warm)


@needs_numba
def test_direct_refused_falls_back_to_h5py(small_chunks, monkeypatch):
    """A file system that refuses O_DIRECT: the WSI under way continues with h5py chunk reads,
    the rest are read whole with h5py; same tables."""
    warm = small_chunks()
    n_wsi = warm.summary["counts"]["n_wsi"]
    monkeypatch.setattr(H5adSource, "read_rows_direct", lambda self, rows, layer, buf: None)
    res = small_chunks(lambda path: 0.0, memory=1 << 20)
    assert res.run_info["matrix_reads"] == reads(h5py=2 * n_wsi, h5py_not_cached=2 * (n_wsi - 1))
    _same_tables(res, warm)


@needs_numba
def test_direct_with_spots_in_another_order(small_chunks, cohort, tmp_path):
    """Truth spots shuffled within each WSI: a chunk's truth rows are spread over the whole WSI,
    so those WSIs are read whole (h5py), and the scores are unchanged."""
    rng = np.random.default_rng(5)
    sample = cohort.truth.obs["sample_id"].astype(str).to_numpy()
    within = np.lexsort((rng.random(len(sample)), sample))
    cohort.truth[within].copy().write_h5ad(tmp_path / "truth.h5ad")
    warm = small_chunks()
    res = small_chunks(lambda path: 0.0, memory=1 << 20, truth=tmp_path / "truth.h5ad")
    n_wsi = warm.summary["counts"]["n_wsi"]
    assert res.run_info["matrix_reads"] == reads(h5py=2 * n_wsi, h5py_not_cached=2 * n_wsi)
    for table in ("pathway_scores", "gene_variance"):
        pd.testing.assert_frame_equal(getattr(res, table), getattr(warm, table), rtol=0, atol=1e-12)


def test_reader_thread_ends_when_scoring_fails(cohort_files, tmp_path):
    """An error after the first WSI started reading (here: no pathway gene in the panel) stops the reader."""
    gmt = tmp_path / "none.gmt"
    gmt.write_text("SET\tdesc\t" + "\t".join(f"NOTAGENE{i}" for i in range(20)) + "\n")
    with pytest.raises(InputError, match="none of the 1 pathways"):
        score(cohort_files["good"], cohort_files["truth"], pathways=gmt, checksum=False)
    assert not [t for t in threading.enumerate() if t.name.startswith("gpc-bench-read")]
