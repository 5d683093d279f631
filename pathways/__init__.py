"""Pathway collections shipped with gpc-bench (installed as ``gpc_bench.pathways``)."""
