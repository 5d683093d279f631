"""Reference HistoPrism model (PyTorch): train, predict, featurize, load published weights.

Torch is imported only by the modules that need it (``model``, ``data``, ``train``, ``predict``);
``config`` and ``featurize`` work without it. Install the ``[model]`` extra for the rest.
"""
