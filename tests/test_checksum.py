"""Input checksums: sha256 reused per file version, recomputed when the file changes."""

from __future__ import annotations

import hashlib
import os

from gpc_bench.io.checksum import file_sha256


def test_digest_is_cached_per_file_version(tmp_path):
    cache = tmp_path / "cache"
    f = tmp_path / "data.bin"
    f.write_bytes(b"spots" * 1000)
    want = hashlib.sha256(f.read_bytes()).hexdigest()
    assert file_sha256(f, cache=cache) == (want, False)
    assert file_sha256(f, cache=cache) == (want, True)
    # same size, new content: mtime/ctime change, so the digest is computed again
    f.write_bytes(b"genes" * 1000)
    new = hashlib.sha256(f.read_bytes()).hexdigest()
    assert new != want and file_sha256(f, cache=cache) == (new, False)
    # content changed with the old mtime put back: ctime still differs
    st = f.stat()
    f.write_bytes(b"pathw" * 1000)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert file_sha256(f, cache=cache)[0] == hashlib.sha256(f.read_bytes()).hexdigest()
    assert file_sha256(f, use_cache=False, cache=cache) == (hashlib.sha256(f.read_bytes()).hexdigest(), False)


def test_unwritable_cache_still_gives_the_digest(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    cache = blocker / "cache"
    f = tmp_path / "data.bin"
    f.write_bytes(b"abc")
    assert file_sha256(f, cache=cache) == (hashlib.sha256(b"abc").hexdigest(), False)
    assert file_sha256(f, cache=cache) == (hashlib.sha256(b"abc").hexdigest(), False)


def test_score_records_how_the_digest_was_obtained(cohort_files, tmp_path, monkeypatch):
    from gpc_bench import score

    monkeypatch.setenv("GPC_BENCH_CACHE", str(tmp_path / "cache"))
    kw = {"pathways": cohort_files["pathways"]}
    first = score(cohort_files["noisy"], cohort_files["truth"], **kw)
    second = score(cohort_files["noisy"], cohort_files["truth"], **kw)
    assert first.run_info["sha256"] == {"predictions": "computed", "truth": "computed"}
    assert second.run_info["sha256"] == {"predictions": "cached", "truth": "cached"}
    assert first.summary["inputs"] == second.summary["inputs"]
    want = hashlib.sha256(cohort_files["noisy"].read_bytes()).hexdigest()
    assert second.summary["inputs"]["predictions"]["sha256"] == want
