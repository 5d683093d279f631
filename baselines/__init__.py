"""Reference HistoPrism model and adapters for other models' prediction files (installed as ``gpc_bench.baselines``)."""
