"""Adapters: turn the prediction files other models' own code writes into gpc-bench's format.

One module per format; each returns a :class:`~gpc_bench.baselines.adapters._common.Converted`
(the prediction AnnData and a conversion report). ``gpc-bench convert --from FORMAT`` writes them.
Formats so far: ``stpath-h5ad`` (pred_<id>.h5ad), ``histoprism`` (predicted_genes.csv), ``stem``
(generated_samples_*.pt), ``stflow`` (preds_all/targets_all). See docs/adapters.md.
"""

FORMATS = ("stpath-h5ad", "histoprism", "stem", "stflow")
