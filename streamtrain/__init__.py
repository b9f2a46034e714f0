"""streamtrain: out-of-core training of text classifiers.

Pipeline: ``prepare`` (raw text -> vectorized shards + manifest), ``fit``
(shards -> Keras model directory), ``evaluate`` and ``predict``.
"""

__version__ = "0.1.0"
