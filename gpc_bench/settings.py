"""How fast, not what: options that never change a number, and the environment variables behind them.

Every environment variable gpc-bench reads is read here, in :meth:`Settings.from_env`:

=========================  ==============================================================
``GPC_BENCH_THREADS``      kernel threads (default: usable cores, at most 8)
``GPC_BENCH_KERNEL``       ``numba`` or ``numpy``: force a PCC kernel (default: by size)
``GPC_BENCH_BLOCK_MB``     MiB per matrix in a row block read at a time (default 64)
``GPC_BENCH_MMAP``         ``0``: never memory-map cached WSIs (e.g. on a network file system)
``GPC_BENCH_CACHE``        cache folder for downloads and input checksums (default: the
                           platform's user cache dir)
``GPC_BENCH_MSIGDB_URL``   a mirror of the MSigDB download site (curation)
``GPC_BENCH_GO_URL``       a mirror of release.geneontology.org (curation)
=========================  ==============================================================
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ._errors import InputError

KERNELS = ("auto", "numba", "numpy")


@dataclass(frozen=True)
class Settings:
    """Speed and environment settings (never part of a run's config).

    Attributes
    ----------
    threads
        Kernel threads; ``None``: :func:`default_threads`.
    kernel
        ``auto`` (numba for large cohorts when installed, else numpy), ``numba`` or ``numpy``.
    block_bytes
        Bytes per matrix in a row block read at a time.
    mmap
        Let the kernel read cached WSIs in place through a memory map (where the platform
        can; :mod:`gpc_bench.io.mapped`).
    cache_dir
        Cache folder; ``None``: the platform's user cache dir.
    msigdb_url, go_url
        Download mirrors (``None``: the official sites).
    """

    threads: int | None = None
    kernel: str = "auto"
    block_bytes: int = 64 << 20
    mmap: bool = True
    cache_dir: Path | None = None
    msigdb_url: str | None = None
    go_url: str | None = None

    def __post_init__(self) -> None:
        if self.kernel not in KERNELS:
            raise InputError(
                f"kernel must be one of {KERNELS}, not {self.kernel!r}", "check GPC_BENCH_KERNEL"
            )
        if self.threads is not None and self.threads < 1:
            raise InputError(f"threads must be at least 1, not {self.threads}", "check GPC_BENCH_THREADS")
        if self.block_bytes < 1:
            raise InputError(f"block size must be positive, not {self.block_bytes}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Settings from the environment (see the module docstring), then ``overrides``."""
        env = os.environ if environ is None else environ

        def number(name: str, scale: int = 1) -> int | None:
            raw = env.get(name, "").strip()
            if not raw:
                return None
            try:
                return int(float(raw) * scale)
            except ValueError:
                raise InputError(f"{name}={raw!r} is not a number") from None

        values = {
            "threads": number("GPC_BENCH_THREADS"),
            "kernel": env.get("GPC_BENCH_KERNEL", "").strip().lower() or "auto",
            "block_bytes": number("GPC_BENCH_BLOCK_MB", 1 << 20),
            "mmap": env.get("GPC_BENCH_MMAP", "1").strip().lower() not in ("0", "false", "no", "off"),
            "cache_dir": Path(env["GPC_BENCH_CACHE"]) if env.get("GPC_BENCH_CACHE") else None,
            "msigdb_url": env.get("GPC_BENCH_MSIGDB_URL") or None,
            "go_url": env.get("GPC_BENCH_GO_URL") or None,
        }
        values = {k: v for k, v in values.items() if v is not None}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)

    def resolved_cache_dir(self) -> Path:
        """The cache folder to use."""
        if self.cache_dir is not None:
            return Path(self.cache_dir)
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("gpc-bench"))


def default_threads() -> int:
    """The number of usable cores, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def current() -> Settings:
    """Settings read from the environment now."""
    return Settings.from_env()
