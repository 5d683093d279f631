"""Reference HistoPrism model and adapters for other models' prediction files.

Installed as ``gpc_bench.baselines``; the model and adapters come in later issues.
"""
