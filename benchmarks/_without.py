"""Run the ``gpc-bench`` command line with named speed devices switched off (for bench_score.py).

    python benchmarks/_without.py tables,checksum_thread -- score PRED --truth T ...

Each device is replaced by the plain code a reader would write in its place, so that the
difference in time is what the device buys:

- ``checksum_thread``: the input checksums are computed before scoring, not on a thread alongside;
- ``tables``: the result tables are written by pandas (``DataFrame.to_csv`` / ``to_parquet``)
  instead of straight from numpy columns with pyarrow.

The memory-mapped route is switched off with ``GPC_BENCH_MMAP=0`` (a setting), not here. Two
devices measured this way saved under 10% and were removed (docs/performance.md): reading the next
row block on a thread, and loading the numba kernel on a thread while the inputs were aligned.
"""

from __future__ import annotations

import sys


def _no_checksum_thread() -> None:
    from gpc_bench import scoring
    from gpc_bench.io.checksum import file_sha256

    class Serial(scoring._Checksums):
        def __init__(self, paths, enabled, cache) -> None:
            self.result = {k: None for k in paths}
            self.cached = {k: None for k in paths}
            self._thread = None
            for k, p in paths.items():
                if p is not None and enabled:
                    self.result[k], self.cached[k] = file_sha256(p, cache=cache)

    scoring._Checksums = Serial


def _pandas_tables() -> None:
    from gpc_bench._table import Table

    def write_csv(self, path) -> None:
        self.to_pandas().to_csv(path, index=False)

    def write_parquet(self, path) -> None:
        self.to_pandas().to_parquet(path, index=False)

    Table.write_csv = write_csv
    Table.write_parquet = write_parquet


DEVICES = {
    "checksum_thread": _no_checksum_thread,
    "tables": _pandas_tables,
}


def main() -> None:
    sep = sys.argv.index("--")
    for name in filter(None, ",".join(sys.argv[1:sep]).split(",")):
        if name not in DEVICES:
            raise SystemExit(f"unknown device {name!r}; known: {', '.join(DEVICES)}")
        DEVICES[name]()
    from gpc_bench._entry import run

    run(sys.argv[sep + 1 :])


if __name__ == "__main__":
    main()
